// The /assets folder of a dependent app's release image, as a tar, extracted through the engine
// without running anything: a container is created (never started), its archive read, and it is
// removed. Cached per app and commit on disk: written to a temp file and renamed, so a tar is served
// only whole; the cache is bounded in total size (least recently used go first) and holds only the
// commits still wanted.
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { NotFoundError } from '../../shared/errors.js';
import fsp, { fd } from '../../shared/fsAsync.js';
import { withDeadline } from '../engine/deadline.js';
import { scopeLabel } from '../engine/labels.js';
import { randomHex } from '../randomHex.js';

export interface AssetCacheOptions {
  docker: Docker;
  dir: string;
  scope: string | undefined;
  /** total bytes of cached tars; default 512 MiB */
  maxBytes?: number;
  /** a test's seam: runs when a temp file is whole, before its rename (another call may run there) */
  beforeRename?(tmp: string): Promise<void>;
}

const utimes = promisify(fs.utimes);

/** A tar larger than this is refused: nothing a gateway should hold or serve. */
const MAX_TAR_BYTES = 4 * 1024 * 1024 * 1024;

export class AssetCache {
  private readonly extracting = new Map<string, Promise<string>>();
  /** temp files being written now (a prune leaves them; those a crash left go) */
  private readonly writing = new Set<string>();
  private readonly maxBytes: number;

  constructor(private readonly o: AssetCacheOptions) {
    this.maxBytes = o.maxBytes ?? 512 * 1024 * 1024;
  }

  /** The cached tar's path for the app's commit (extracted from `image` first if needed). */
  async tar(appId: number, commit: string, image: string): Promise<string> {
    const file = this.fileOf(appId, commit);
    const at = new Date();
    if (
      await fsp.access(file).then(
        () => true,
        () => false,
      )
    ) {
      await utimes(file, at, at).catch(() => undefined); // most recently used
      return file;
    }
    let pending = this.extracting.get(file);
    if (!pending) {
      pending = this.extract(image, file).finally(() => this.extracting.delete(file));
      this.extracting.set(file, pending);
    }
    return pending;
  }

  /** Removes the tars of commits no longer wanted (and temp files a crash left). */
  async prune(wanted: (appId: number, commit: string) => boolean): Promise<void> {
    for (const name of await this.names()) {
      const parsed = /^(\d+)_(.+)\.tar$/.exec(name);
      if (this.writing.has(name)) continue;
      if (!parsed || !wanted(Number(parsed[1]), parsed[2]!)) await fsp.rm(path.join(this.o.dir, name), { force: true });
    }
  }

  private fileOf(appId: number, commit: string): string {
    return path.join(this.o.dir, `${appId}_${commit}.tar`);
  }

  private async names(): Promise<string[]> {
    return fsp.readdir(this.o.dir).catch(() => [] as string[]);
  }

  private async extract(image: string, file: string): Promise<string> {
    await fsp.mkdir(this.o.dir, { recursive: true });
    const tmpName = `.${await randomHex(8)}.tmp`;
    const tmp = path.join(this.o.dir, tmpName);
    const { docker } = this.o;
    // never started: the entrypoint only has to exist for the engine to create it (an /assets-only image has none)
    const container = await withDeadline((d) =>
      docker.createContainer({ Image: image, Entrypoint: ['/assets'], Labels: { ...scopeLabel(this.o.scope) }, HostConfig: { NetworkMode: 'none' }, ...d }),
    ).catch((err: Error & { statusCode?: number }) => {
      throw err.statusCode === 404 ? new NotFoundError(`the image ${image} is not on the device yet`) : err;
    });
    this.writing.add(tmpName);
    try {
      const archive = await withDeadline((d) => container.getArchive({ path: '/assets', ...d }), 30_000).catch((err: Error & { statusCode?: number }) => {
        throw err.statusCode === 404 ? new NotFoundError(`the image ${image} has no /assets folder`) : err;
      });
      let size = 0;
      archive.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_TAR_BYTES)
          (archive as unknown as { destroy(e: Error): void }).destroy(new Error(`/assets of ${image} is larger than ${MAX_TAR_BYTES} bytes`));
      });
      await pipeline(archive, fs.createWriteStream(tmp, { mode: 0o600 }));
      await fsynced(tmp); // whole on disk before it has its name: a crash never leaves a short tar to serve
      await this.o.beforeRename?.(tmp);
      await fsp.rename(tmp, file);
      await this.bound(file, size);
      return file;
    } finally {
      this.writing.delete(tmpName);
      await fsp.rm(tmp, { force: true });
      await withDeadline((d) => container.remove({ force: true, ...d })).catch(() => undefined);
    }
  }

  /** Least recently used tars go until the cache fits (the one just made stays). */
  private async bound(keep: string, keepSize: number): Promise<void> {
    const others: { file: string; size: number; used: number }[] = [];
    for (const name of await this.names()) {
      const file = path.join(this.o.dir, name);
      if (file === keep || !name.endsWith('.tar')) continue;
      const st = await fsp.lstat(file).catch(() => undefined);
      if (st?.isFile()) others.push({ file, size: st.size, used: st.mtimeMs });
    }
    let total = keepSize + others.reduce((n, o) => n + o.size, 0);
    for (const o of others.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxBytes) break;
      await fsp.rm(o.file, { force: true });
      total -= o.size;
    }
  }
}

async function fsynced(file: string): Promise<void> {
  const f = await fd.open(file, 'r');
  try {
    await fd.fsync(f);
  } finally {
    await fd.close(f);
  }
}
