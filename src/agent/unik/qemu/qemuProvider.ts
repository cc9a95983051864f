// The UniK provider `qemu`: an image is a kernel + an initramfs around one static executable, an
// instance a qemu micro-VM (user-mode network, ports forwarded on 127.0.0.1 from the run's
// BOSUN_PORTS env), a volume an ext2 image attached as a virtio disk. State lives in JSON files under
// <dataDir>/unik/qemu; a restarted agent finds its running VMs again by pid and command line.
// Here the bookkeeping: records, names, one operation at a time per instance, volumes; an
// instance's VM: instanceVm.ts; building an image: imageBuild.ts.
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
import { consoleTail, follow } from './console.js';
import { conflict, diskFull, notFound } from './errors.js';
import { DEFAULT_MEMORY_MB, ImageBuilder } from './imageBuild.js';
import { InstanceVms } from './instanceVm.js';
import { QEMU } from './qemuArgs.js';
import { type ImageRecord, INFRASTRUCTURE, type InstanceRecord, qemuStoreRoot, Store, type VolumeRecord } from './store.js';
import { checkArgs, checkEnv, checkMounts, checkName, PORTS_ENV, parsePorts } from './validate.js';
import { copyRawDisk, folderUsage, makeExt2, volumeSizeMb } from './volumes.js';
import { isoTime } from '../../../shared/isoTime.js';

const MAX_MEMORY_MB = 8192;
const MAX_LOGS = 1024 * 1024;

export async function createQemuProvider(options: { dataDir: string; cacheDir: string; log: EventLog }): Promise<UnikProvider | undefined> {
  if (!(await onPath(QEMU))) return undefined;
  const store = new Store(qemuStoreRoot(options.dataDir));
  const provider = new QemuProvider(store, new ImageBuilder(store, options.cacheDir, options.log), options.log);
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

class QemuProvider implements UnikProvider {
  readonly name = INFRASTRUCTURE;
  readonly compilers = [
    { base: 'static', lang: 'binary', description: 'one static x86-64 executable (the tar holds just it), run by a tiny init in a qemu micro-VM' },
  ];
  private readonly images = new Map<string, ImageRecord>();
  private readonly instances = new Map<string, InstanceRecord>();
  private readonly volumes = new Map<string, VolumeRecord>();
  /** names being built or made, refused to a second request until done */
  private readonly making = new Set<string>();
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly vms: InstanceVms;

  constructor(
    private readonly store: Store,
    private readonly builder: ImageBuilder,
    private readonly log: EventLog,
  ) {
    this.vms = new InstanceVms(store, this.images, log);
  }

  async load(): Promise<void> {
    const onBad = (id: string, err: Error) => this.log.warn(`UniK qemu: ignoring unreadable record ${id}: ${err.message}`);
    for (const r of await this.store.load<ImageRecord>('images', onBad)) this.images.set(r.image.Id, r);
    for (const r of await this.store.load<VolumeRecord>('volumes', onBad)) this.volumes.set(r.Id, r);
    for (const r of await this.store.load<InstanceRecord>('instances', onBad)) this.instances.set(r.Id, r);
    this.vms.rotateConsoles(this.instances);
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
        const record = await this.builder.build(req);
        this.images.set(record.image.Id, record);
        return record.image;
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
    return Promise.all([...this.instances.values()].map(async (r) => this.toInstance(r, await this.vms.state(r))));
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
          Created: isoTime(),
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
          await this.queued(id, () => this.vms.boot(rec));
        } catch (err) {
          this.instances.delete(id);
          await this.store.remove('instances', id);
          throw err;
        }
        this.log.info(`UniK qemu: instance ${req.name} running (${rec.accel})`);
        return this.toInstance(rec, await this.vms.state(rec));
      },
    );
  }

  startInstance(instance: UnikInstance): Promise<void> {
    return this.queued(instance.Id, async () => this.vms.boot(this.record(instance)));
  }

  stopInstance(instance: UnikInstance): Promise<void> {
    return this.queued(instance.Id, async () => this.vms.halt(this.record(instance)));
  }

  deleteInstance(instance: UnikInstance, force: boolean): Promise<void> {
    return this.queued(instance.Id, async () => {
      const rec = this.record(instance);
      if ((await this.vms.running(rec)) && !force) throw conflict(`instance ${rec.Name} is running (stop it, or force)`);
      await this.vms.halt(rec);
      this.instances.delete(rec.Id);
      this.vms.forget(rec.Id);
      await this.store.remove('instances', rec.Id);
    });
  }

  async logs(instance: UnikInstance): Promise<string> {
    return consoleTail(this.vms.console(this.record(instance).Id), MAX_LOGS);
  }

  followLogs(instance: UnikInstance, signal: AbortSignal): AsyncIterable<Buffer> {
    return follow(this.vms.console(this.record(instance).Id), signal);
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
          const rec: VolumeRecord = { Id: id, Name: req.name, SizeMb: sizeMb, Created: isoTime() };
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
      await this.vms.remount(rec, { ...rec.mounts, [mountPoint]: volume.Id });
    });
  }

  async detachVolume(volume: UnikVolume): Promise<void> {
    const holder = this.holderOf(volume.Id);
    if (!holder) throw conflict(`volume ${volume.Name} is not attached`);
    await this.queued(holder.Id, () => this.vms.remount(holder, Object.fromEntries(Object.entries(holder.mounts).filter(([, v]) => v !== volume.Id))));
  }

  // ---- internals

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
    return {
      Id: r.Id,
      Name: r.Name,
      State,
      IpAddress: State === 'running' ? '127.0.0.1' : '',
      ImageId: r.ImageId,
      Infrastructure: INFRASTRUCTURE,
      Created: r.Created,
    };
  }

  private toVolume(v: VolumeRecord): UnikVolume {
    return { ...v, Attachment: this.holderOf(v.Id)?.Id ?? '', Infrastructure: INFRASTRUCTURE };
  }
}
