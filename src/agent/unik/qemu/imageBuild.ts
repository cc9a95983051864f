// A qemu image: the guest kernel and an initramfs around the app's one static executable, made in
// a staging folder and committed with its record (a failed build leaves nothing behind). The guest
// assets (kernel, modules, busybox) are fetched once, on the first build.
import path from 'node:path';
import fs from '../../../shared/fsAsync.js';
import type { EventLog } from '../../eventLog.js';
import { randomHex } from '../../randomHex.js';
import type { BuildRequest, UnikImage } from '../provider.js';
import { type GuestAssets, guestAssets } from './assets.js';
import { findApp, imageInitramfs } from './initramfs.js';
import { diskFull } from './errors.js';
import { type ImageRecord, INFRASTRUCTURE, type Store } from './store.js';
import { isoTime } from '../../../shared/isoTime.js';

/** The memory of an instance that does not ask for an amount. */
export const DEFAULT_MEMORY_MB = 128;
const MiB = 1024 * 1024;

export class ImageBuilder {
  private assets: Promise<GuestAssets> | undefined;

  constructor(
    private readonly store: Store,
    private readonly cacheDir: string,
    private readonly log: EventLog,
  ) {}

  /** The image `req` asks for, its files made and its record committed. */
  async build(req: BuildRequest): Promise<ImageRecord> {
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
        Infrastructure: INFRASTRUCTURE,
        Created: isoTime(),
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
      this.log.info(`UniK qemu: built image ${req.name} (${assets.kernelPackage})`);
      return record;
    } catch (err) {
      await fs.rm(dir, { recursive: true, force: true });
      throw diskFull(err);
    }
  }

  private guestAssets(): Promise<GuestAssets> {
    this.assets ??= guestAssets(this.cacheDir).catch((err) => {
      this.assets = undefined;
      throw err;
    });
    return this.assets;
  }
}
