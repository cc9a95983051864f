// The UniK provider `qemu`: an image is a kernel + an initramfs around one static executable, an
// instance a qemu micro-VM (user-mode network, ports forwarded on 127.0.0.1 from the run's
// BOSUN_PORTS env), a volume an ext2 image attached as a virtio disk. State lives in JSON files under
// <dataDir>/unik/qemu; a restarted agent finds its running VMs again by pid and command line.
import path from 'node:path';
import fs from '../../../shared/fsAsync.js';
import type { EventLog } from '../../eventLog.js';
import { randomHex } from '../../randomHex.js';
import {
  type BuildRequest,
  type RunRequest,
  UnikError,
  type UnikImage,
  type UnikInstance,
  type UnikProvider,
  type UnikVolume,
  type VolumeRequest,
} from '../provider.js';
import { launchVm } from './accel.js';
import { type GuestAssets, guestAssets } from './assets.js';
import { appStarted, consoleTail, follow, rotateConsole } from './console.js';
import { diskDevice, diskSerial, settingsScript } from './guest.js';
import { hotAttach, hotDetach } from './hotplug.js';
import { findApp, imageInitramfs, writeInstanceInitrd } from './initramfs.js';
import { type Accel, consoleFile, QEMU, type VmSpec } from './qemuArgs.js';
import { type ImageRecord, type InstanceRecord, qemuStoreRoot, Store, type VolumeRecord } from './store.js';
import { checkArgs, checkEnv, checkMounts, checkName, PORTS_ENV, parsePorts } from './validate.js';
import { isInstanceVm, stopVm } from './vm.js';
import { copyRawDisk, folderUsage, makeExt2, volumeSizeMb } from './volumes.js';

const NAME = 'qemu';
const DEFAULT_MEMORY_MB = 128;
const MAX_MEMORY_MB = 8192;
const MAX_LOGS = 1024 * 1024;
const ROTATE_EVERY_MS = 30_000;
const MiB = 1024 * 1024;

export async function createQemuProvider(options: { dataDir: string; cacheDir: string; log: EventLog }): Promise<UnikProvider | undefined> {
  if (!(await onPath(QEMU))) return undefined;
  const provider = new QemuProvider(new Store(qemuStoreRoot(options.dataDir)), options.cacheDir, options.log);
  await provider.load();
  return provider;
}

async function onPath(cmd: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    if (
      await fs.access(path.join(dir, cmd), 1).then(
        () => true,
        () => false,
      )
    )
      return true;
  }
  return false;
}

const notFound = (kind: string, id: string) => new UnikError('not-found', `no qemu ${kind} ${id}`);
const conflict = (message: string) => new UnikError('conflict', message);
const diskFull = (err: unknown) => ((err as NodeJS.ErrnoException).code === 'ENOSPC' ? new UnikError('insufficient-storage', 'the disk is full') : err);

class QemuProvider implements UnikProvider {
  readonly name = NAME;
  readonly compilers = [
    { base: 'static', lang: 'binary', description: 'one static x86-64 executable (the tar holds just it), run by a tiny init in a qemu micro-VM' },
  ];
  private readonly images = new Map<string, ImageRecord>();
  private readonly instances = new Map<string, InstanceRecord>();
  private readonly volumes = new Map<string, VolumeRecord>();
  /** names being built or made, refused to a second request until done */
  private readonly making = new Set<string>();
  private readonly queues = new Map<string, Promise<unknown>>();
  /** instance id → the pid of the VM whose app was seen started (one entry per instance) */
  private readonly started = new Map<string, number>();
  private assets: Promise<GuestAssets> | undefined;

  constructor(
    private readonly store: Store,
    private readonly cacheDir: string,
    private readonly log: EventLog,
  ) {}

  async load(): Promise<void> {
    const onBad = (id: string, err: Error) => this.log.warn(`UniK qemu: ignoring unreadable record ${id}: ${err.message}`);
    for (const r of await this.store.load<ImageRecord>('images', onBad)) this.images.set(r.image.Id, r);
    for (const r of await this.store.load<VolumeRecord>('volumes', onBad)) this.volumes.set(r.Id, r);
    for (const r of await this.store.load<InstanceRecord>('instances', onBad)) this.instances.set(r.Id, r);
    // the consoles of running VMs grow while they print: checked now and then, rotated when large
    setInterval(() => void this.rotateConsoles(), ROTATE_EVERY_MS).unref();
  }

  private async rotateConsoles(): Promise<void> {
    for (const rec of this.instances.values()) {
      if (rec.pid) await rotateConsole(consoleFile(this.store.dir('instances', rec.Id))).catch(() => undefined);
    }
  }

  // ---- images

  async listImages(): Promise<UnikImage[]> {
    return [...this.images.values()].map((r) => r.image);
  }

  async buildImage(req: BuildRequest): Promise<UnikImage> {
    if (req.compiler.base !== 'static' || req.compiler.lang !== 'binary')
      throw new UnikError('bad-request', 'the qemu provider builds static-binary-qemu only');
    checkName('image', req.name);
    checkArgs(req.args);
    checkMounts(req.mounts);
    return this.claimName(
      req.name,
      [...this.images.values()].map((r) => r.image.Name),
      async () => {
        const app = await findApp(req.sourceDir);
        const assets = await this.guestAssets();
        req.signal.throwIfAborted();
        const id = await randomHex(8);
        const dir = await this.store.staging('images', id);
        try {
          await fs.writeFile(path.join(dir, 'initrd.img'), await imageInitramfs(assets, app), { mode: 0o600 });
          await fs.link(assets.kernel, path.join(dir, 'vmlinuz')).catch(async () => fs.writeFile(path.join(dir, 'vmlinuz'), await fs.readFile(assets.kernel)));
          req.signal.throwIfAborted();
          const bytes = (await fs.lstat(path.join(dir, 'initrd.img'))).size + (await fs.lstat(path.join(dir, 'vmlinuz'))).size;
          const image: UnikImage = {
            Id: id,
            Name: req.name,
            SizeMb: Math.ceil(bytes / MiB),
            Infrastructure: NAME,
            Created: new Date().toISOString(),
            StageSpec: { ImageFormat: 'initramfs' },
            RunSpec: {
              DeviceMappings: req.mounts.map((m, i) => ({ MountPoint: m, DeviceName: `/dev/vd${String.fromCharCode(97 + i)}` })),
              DefaultInstanceMemory: DEFAULT_MEMORY_MB,
              MinInstanceDiskMB: 0,
              Compiler: 'static-binary-qemu',
            },
          };
          const record: ImageRecord = { image, app: app.name, args: [...req.args], mounts: [...req.mounts] };
          await this.store.commit('images', id, record);
          this.images.set(id, record);
          this.log.info(`UniK qemu: built image ${req.name} (${assets.kernelPackage})`);
          return image;
        } catch (err) {
          await fs.rm(dir, { recursive: true, force: true });
          throw diskFull(err);
        }
      },
    );
  }

  async deleteImage(image: UnikImage, force: boolean): Promise<void> {
    const users = [...this.instances.values()].filter((i) => i.ImageId === image.Id);
    if (users.length && !force) throw conflict(`image ${image.Name} is used by instance(s) ${users.map((u) => u.Name).join(', ')}`);
    for (const u of users) await this.deleteInstance(this.toInstance(u, 'unknown'), true);
    if (!this.images.delete(image.Id)) throw notFound('image', image.Name);
    await this.store.remove('images', image.Id);
  }

  // ---- instances

  async listInstances(): Promise<UnikInstance[]> {
    return Promise.all([...this.instances.values()].map(async (r) => this.toInstance(r, await this.state(r))));
  }

  async runInstance(req: RunRequest): Promise<UnikInstance> {
    checkName('instance', req.name);
    const image = this.images.get(req.image.Id);
    if (!image) throw notFound('image', req.image.Name);
    const asked = [...req.mounts.keys()].sort();
    if (asked.join('\0') !== [...image.mounts].sort().join('\0'))
      throw new UnikError('bad-request', `image ${image.image.Name} needs exactly the mount points [${image.mounts.join(', ')}]`);
    checkEnv(req.env);
    const ports = parsePorts(req.env[PORTS_ENV]);
    const memoryMb = req.memoryMb || DEFAULT_MEMORY_MB;
    if (!Number.isInteger(memoryMb) || memoryMb < 64 || memoryMb > MAX_MEMORY_MB) throw new UnikError('bad-request', `MemoryMb must be 64-${MAX_MEMORY_MB}`);
    const mounts: Record<string, string> = {};
    for (const [mountPoint, volume] of req.mounts) {
      if (!this.volumes.has(volume.Id)) throw notFound('volume', volume.Name);
      const holder = this.holderOf(volume.Id);
      if (holder || Object.values(mounts).includes(volume.Id)) throw conflict(`volume ${volume.Name} is already attached${holder ? ` to ${holder.Name}` : ''}`);
      mounts[mountPoint] = volume.Id;
    }
    return this.claimName(
      req.name,
      [...this.instances.values()].map((r) => r.Name),
      async () => {
        const id = await randomHex(8);
        // checked again with no await before the record goes in: a concurrent run may have taken a volume
        for (const volume of req.mounts.values()) if (this.holderOf(volume.Id)) throw conflict(`volume ${volume.Name} is already attached`);
        const rec: InstanceRecord = {
          Id: id,
          Name: req.name,
          ImageId: image.image.Id,
          Created: new Date().toISOString(),
          env: { ...req.env },
          memoryMb,
          debug: req.debugMode,
          ports,
          mounts,
        };
        this.instances.set(id, rec);
        try {
          await this.store.staging('instances', id);
          await this.store.commit('instances', id, rec).catch((err) => Promise.reject(diskFull(err)));
          await this.queued(id, () => this.boot(rec));
        } catch (err) {
          this.instances.delete(id);
          await this.store.remove('instances', id);
          throw err;
        }
        this.log.info(`UniK qemu: instance ${req.name} running (${rec.accel})`);
        return this.toInstance(rec, await this.state(rec));
      },
    );
  }

  startInstance(instance: UnikInstance): Promise<void> {
    return this.queued(instance.Id, async () => this.boot(this.record(instance)));
  }

  stopInstance(instance: UnikInstance): Promise<void> {
    return this.queued(instance.Id, async () => this.halt(this.record(instance)));
  }

  deleteInstance(instance: UnikInstance, force: boolean): Promise<void> {
    return this.queued(instance.Id, async () => {
      const rec = this.record(instance);
      if ((await this.running(rec)) && !force) throw conflict(`instance ${rec.Name} is running (stop it, or force)`);
      await this.halt(rec);
      this.instances.delete(rec.Id);
      this.started.delete(rec.Id);
      await this.store.remove('instances', rec.Id);
    });
  }

  async logs(instance: UnikInstance): Promise<string> {
    return consoleTail(consoleFile(this.store.dir('instances', this.record(instance).Id)), MAX_LOGS);
  }

  followLogs(instance: UnikInstance, signal: AbortSignal): AsyncIterable<Buffer> {
    return follow(consoleFile(this.store.dir('instances', this.record(instance).Id)), signal);
  }

  // ---- volumes

  async listVolumes(): Promise<UnikVolume[]> {
    return [...this.volumes.values()].map((v) => this.toVolume(v));
  }

  async createVolume(req: VolumeRequest): Promise<UnikVolume> {
    checkName('volume', req.name);
    const usage = req.dataDir ? await folderUsage(req.dataDir) : undefined;
    const sizeMb = req.rawFile ? 0 : volumeSizeMb(req.sizeMb, usage);
    return this.claimName(
      req.name,
      [...this.volumes.values()].map((v) => v.Name),
      async () => {
        const id = await randomHex(8);
        const dir = await this.store.staging('volumes', id);
        try {
          const disk = path.join(dir, 'disk.ext2');
          const rec: VolumeRecord = { Id: id, Name: req.name, SizeMb: sizeMb, Created: new Date().toISOString() };
          if (req.rawFile) rec.SizeMb = await copyRawDisk(req.rawFile, disk, req.sizeMb);
          else await makeExt2(disk, sizeMb, usage?.entries ?? 0, req.dataDir);
          await this.store.commit('volumes', id, rec);
          this.volumes.set(id, rec);
          return this.toVolume(rec);
        } catch (err) {
          await fs.rm(dir, { recursive: true, force: true });
          throw diskFull(err);
        }
      },
    );
  }

  async deleteVolume(volume: UnikVolume, force: boolean): Promise<void> {
    const holder = this.holderOf(volume.Id);
    if (holder && !force) throw conflict(`volume ${volume.Name} is attached to ${holder.Name} (detach it, or force)`);
    if (holder) await this.detachVolume(volume);
    if (!this.volumes.delete(volume.Id)) throw notFound('volume', volume.Name);
    await this.store.remove('volumes', volume.Id);
  }

  /** A running instance gets the disk hot-plugged (a stopped one gets it at its next start). */
  attachVolume(volume: UnikVolume, instance: UnikInstance, mountPoint: string): Promise<void> {
    return this.queued(instance.Id, async () => {
      const rec = this.record(instance);
      if (!this.volumes.has(volume.Id)) throw notFound('volume', volume.Name);
      const holder = this.holderOf(volume.Id);
      if (holder) throw conflict(`volume ${volume.Name} is already attached to ${holder.Name}`);
      if (!this.images.get(rec.ImageId)?.mounts.includes(mountPoint))
        throw new UnikError('bad-request', `the image of ${rec.Name} declares no mount point ${mountPoint}`);
      if (rec.mounts[mountPoint]) throw conflict(`${rec.Name} already has a volume at ${mountPoint}`);
      await this.remount(rec, { ...rec.mounts, [mountPoint]: volume.Id });
    });
  }

  async detachVolume(volume: UnikVolume): Promise<void> {
    const holder = this.holderOf(volume.Id);
    if (!holder) throw conflict(`volume ${volume.Name} is not attached`);
    await this.queued(holder.Id, () => this.remount(holder, Object.fromEntries(Object.entries(holder.mounts).filter(([, v]) => v !== volume.Id))));
  }

  // ---- internals

  /** A running VM gets the change hot-plugged; where that fails (an image built before, a busy mount), it restarts with it. */
  private async remount(rec: InstanceRecord, mounts: Record<string, string>): Promise<void> {
    const before = rec.mounts;
    rec.mounts = mounts; // at once, so that no other request sees the volume free meanwhile
    await this.store.save('instances', rec.Id, rec);
    if (!(await this.running(rec))) return;
    try {
      await this.hotplug(rec, before, mounts);
    } catch (err) {
      this.log.warn(`UniK qemu: ${rec.Name} restarts for its new volumes (hot-plugging failed: ${(err as Error).message})`);
      await this.halt(rec);
      await this.boot(rec);
    }
  }

  private async hotplug(rec: InstanceRecord, before: Record<string, string>, after: Record<string, string>): Promise<void> {
    const points = this.images.get(rec.ImageId)?.mounts ?? [];
    const dir = this.store.dir('instances', rec.Id);
    const disk = (point: string, volumeId: string) => ({ index: points.indexOf(point), volumeId, file: this.diskFile(volumeId) });
    for (const [point, volumeId] of Object.entries(before)) if (after[point] !== volumeId) await hotDetach(dir, disk(point, volumeId));
    for (const [point, volumeId] of Object.entries(after)) if (before[point] !== volumeId) await hotAttach(dir, disk(point, volumeId));
  }

  private diskFile(volumeId: string): string {
    return path.join(this.store.dir('volumes', volumeId), 'disk.ext2');
  }

  private async boot(rec: InstanceRecord): Promise<void> {
    if (await this.running(rec)) return;
    const image = this.images.get(rec.ImageId);
    if (!image) throw notFound('image', rec.ImageId);
    const dir = this.store.dir('instances', rec.Id);
    // a disk's serial and device id follow its mount point's place among the image's (hot-plugging names them so)
    const attached = image.mounts.filter((m) => rec.mounts[m]);
    const index = (m: string) => image.mounts.indexOf(m);
    const disks = attached.map((m) => ({ file: this.diskFile(rec.mounts[m]!), serial: diskSerial(index(m)), device: diskDevice(index(m)) }));
    const settings = settingsScript({
      app: image.app,
      args: image.args,
      env: rec.env,
      points: image.mounts,
      mounts: attached.map((mountPoint) => ({ mountPoint, serial: diskSerial(index(mountPoint)) })),
      emptyMounts: image.mounts.filter((m) => !rec.mounts[m]),
    });
    await writeInstanceInitrd(path.join(this.store.dir('images', rec.ImageId), 'initrd.img'), settings, path.join(dir, 'initrd.img')).catch((err) =>
      Promise.reject(diskFull(err)),
    );
    const spec = (accel: Accel): VmSpec => ({
      id: rec.Id,
      dir,
      kernel: path.join(this.store.dir('images', rec.ImageId), 'vmlinuz'),
      initrd: path.join(dir, 'initrd.img'),
      memoryMb: rec.memoryMb,
      accel,
      ports: rec.ports,
      disks,
      debug: rec.debug,
    });
    const launched = await launchVm(spec, this.store.root, this.log);
    rec.pid = launched.pid;
    rec.accel = launched.accel;
    await this.store.save('instances', rec.Id, rec);
  }

  private async halt(rec: InstanceRecord): Promise<void> {
    if (rec.pid) await stopVm(rec.pid, rec.Id, this.store.dir('instances', rec.Id));
    rec.pid = undefined;
    await this.store.save('instances', rec.Id, rec);
  }

  private guestAssets(): Promise<GuestAssets> {
    this.assets ??= guestAssets(this.cacheDir).catch((err) => {
      this.assets = undefined;
      throw err;
    });
    return this.assets;
  }

  /** `pending` from the launch until the console shows the init starting the app (the VM boots meanwhile). */
  private async state(rec: InstanceRecord): Promise<UnikInstance['State']> {
    if (!(await this.running(rec))) return 'stopped';
    if (this.started.get(rec.Id) === rec.pid) return 'running';
    if (!(await appStarted(consoleFile(this.store.dir('instances', rec.Id))))) return 'pending';
    this.started.set(rec.Id, rec.pid!);
    return 'running';
  }

  private running(rec: InstanceRecord): Promise<boolean> {
    return isInstanceVm(rec.pid, rec.Id);
  }

  private record(instance: UnikInstance): InstanceRecord {
    const rec = this.instances.get(instance.Id);
    if (!rec) throw notFound('instance', instance.Name);
    return rec;
  }

  private holderOf(volumeId: string): InstanceRecord | undefined {
    return [...this.instances.values()].find((i) => Object.values(i.mounts).includes(volumeId));
  }

  /** Runs `make` while no other request may take `name`. */
  private async claimName<T>(name: string, taken: string[], make: () => Promise<T>): Promise<T> {
    if (taken.includes(name) || this.making.has(name)) throw conflict(`the name ${name} is taken`);
    this.making.add(name);
    try {
      return await make();
    } finally {
      this.making.delete(name);
    }
  }

  /** One operation at a time per instance (start, stop, attach, delete). */
  private queued<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.queues.set(key, settled);
    void settled.then(() => this.queues.get(key) === settled && this.queues.delete(key));
    return next;
  }

  private toInstance(r: InstanceRecord, State: UnikInstance['State']): UnikInstance {
    return { Id: r.Id, Name: r.Name, State, IpAddress: State === 'running' ? '127.0.0.1' : '', ImageId: r.ImageId, Infrastructure: NAME, Created: r.Created };
  }

  private toVolume(v: VolumeRecord): UnikVolume {
    return { ...v, Attachment: this.holderOf(v.Id)?.Id ?? '', Infrastructure: NAME };
  }
}
