// The VM of each qemu instance: booted from its image's kernel and an initramfs with the instance's
// settings and volumes, halted, its state read from its process and console, its volumes changed
// while it runs (hot-plugged, or a restart where that fails), its console rotated while it grows.
import path from 'node:path';
import type { EventLog } from '../../eventLog.js';
import type { UnikInstance } from '../provider.js';
import { launchVm } from './accel.js';
import { appStarted, rotateConsole } from './console.js';
import { diskFull, notFound } from './errors.js';
import { diskDevice, diskSerial, settingsScript } from './guest.js';
import { hotAttach, hotDetach } from './hotplug.js';
import { writeInstanceInitrd } from './initramfs.js';
import { type Accel, consoleFile, type VmSpec } from './qemuArgs.js';
import type { ImageRecord, InstanceRecord, Store } from './store.js';
import { isInstanceVm, stopVm } from './vm.js';

const ROTATE_EVERY_MS = 30_000;

export class InstanceVms {
  /** instance id → the pid of the VM whose app was seen started (one entry per instance) */
  private readonly started = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly images: ReadonlyMap<string, ImageRecord>,
    private readonly log: EventLog,
  ) {}

  /** The consoles of running VMs grow while they print: checked now and then, rotated when large. */
  rotateConsoles(instances: ReadonlyMap<string, InstanceRecord>): void {
    const rotate = async () => {
      for (const rec of instances.values()) if (rec.pid) await rotateConsole(this.console(rec.Id)).catch(() => undefined);
    };
    setInterval(() => void rotate(), ROTATE_EVERY_MS).unref();
  }

  console(instanceId: string): string {
    return consoleFile(this.store.dir('instances', instanceId));
  }

  async boot(rec: InstanceRecord): Promise<void> {
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

  async halt(rec: InstanceRecord): Promise<void> {
    if (rec.pid) await stopVm(rec.pid, rec.Id, this.store.dir('instances', rec.Id));
    rec.pid = undefined;
    await this.store.save('instances', rec.Id, rec);
  }

  /** The instance is gone: what was known of its VM goes too. */
  forget(instanceId: string): void {
    this.started.delete(instanceId);
  }

  running(rec: InstanceRecord): Promise<boolean> {
    return isInstanceVm(rec.pid, rec.Id);
  }

  /** `pending` from the launch until the console shows the init starting the app (the VM boots meanwhile). */
  async state(rec: InstanceRecord): Promise<UnikInstance['State']> {
    if (!(await this.running(rec))) return 'stopped';
    if (this.started.get(rec.Id) === rec.pid) return 'running';
    if (!(await appStarted(this.console(rec.Id)))) return 'pending';
    this.started.set(rec.Id, rec.pid!);
    return 'running';
  }

  /** A running VM gets the change hot-plugged; where that fails (an image built before, a busy mount), it restarts with it. */
  async remount(rec: InstanceRecord, mounts: Record<string, string>): Promise<void> {
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
}
