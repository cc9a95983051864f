// Extracts an uploaded tar (plain, or gzip sniffed from its first two bytes) into a new folder, and
// nothing outside it: entries naming `..` or an absolute path, symlinks and hard links that lead out,
// device files and FIFOs are refused, and so is an archive larger than the limits. Every parent of an
// entry is checked with lstat to be a real directory (never a symlink), and files are created with
// O_EXCL|O_NOFOLLOW, so a symlink planted by an earlier entry is never written through. On any
// refusal the folder is removed: the caller gets all of the archive or nothing.
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import fsp, { fd } from '../../shared/fsAsync.js';
import { UnikError } from './provider.js';

export interface ExtractLimits {
  /** the sum of the files' sizes */
  maxBytes: number;
  maxEntries: number;
}

export const DEFAULT_EXTRACT_LIMITS: ExtractLimits = { maxBytes: 512 * 1024 * 1024, maxEntries: 100_000 };

export interface ExtractResult {
  files: number;
  bytes: number;
}

/** Extracts `tarPath` into `dest`, which must not exist yet; `dest` is removed again when the archive is refused. */
export async function safeExtract(tarPath: string, dest: string, limits: ExtractLimits = DEFAULT_EXTRACT_LIMITS): Promise<ExtractResult> {
  await fsp.mkdir(dest, { mode: 0o755 });
  try {
    return await extractInto(tarPath, dest, limits);
  } catch (err) {
    await fsp.rm(dest, { recursive: true, force: true });
    throw toUnikError(err);
  }
}

async function extractInto(tarPath: string, dest: string, limits: ExtractLimits): Promise<ExtractResult> {
  const source: Readable[] = [fs.createReadStream(tarPath)];
  if (await isGzip(tarPath)) source.push((await import('node:zlib')).createGunzip());
  const writer = new EntryWriter(dest, limits);
  const extract = tarStream.extract();
  extract.on('entry', (header, stream, next) => {
    writer.write(header, stream).then(
      () => next(),
      (err: Error) => {
        stream.resume();
        extract.destroy(err);
      },
    );
  });
  await pipeline([...source, extract] as unknown as [Readable, NodeJS.WritableStream]);
  return { files: writer.files, bytes: writer.bytes };
}

async function isGzip(file: string): Promise<boolean> {
  const f = await fd.open(file, 'r');
  try {
    const head = Buffer.alloc(2);
    const { bytesRead } = await fd.read(f, head, 0, 2, 0);
    return bytesRead === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await fd.close(f);
  }
}

const symlink = promisify(fs.symlink);

const refuse = (name: string, why: string) => new UnikError('bad-request', `tar entry "${name}" refused: ${why}`);

/** An entry's path inside the archive as components; refuses absolute paths and `..`. */
export function entryComponents(name: string): string[] {
  if (name.includes('\0')) throw refuse(name.replace(/\0/g, '\\0'), 'NUL in its name');
  if (name.startsWith('/')) throw refuse(name, 'absolute path');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw refuse(name, '".." in its path');
  return parts;
}

/**
 * A symlink may only lead inside the folder: a relative target whose `..` all come first (the
 * entry's parents are real directories, so they resolve as written) and climb no higher than the
 * folder. A `..` after a name could climb out of whatever that name becomes (`b/..` with `b -> .`).
 */
export function symlinkStaysInside(entryParts: string[], target: string): boolean {
  if (target === '' || target.startsWith('/') || target.includes('\0')) return false;
  const parts = target.split('/').filter((p) => p !== '' && p !== '.');
  let up = 0;
  while (parts[up] === '..') up++;
  if (parts.slice(up).includes('..')) return false;
  return up <= entryParts.length - 1;
}

class EntryWriter {
  files = 0;
  bytes = 0;
  private entries = 0;
  /** regular files extracted so far: the only things a hard link may point at */
  private readonly regular = new Set<string>();

  constructor(
    private readonly root: string,
    private readonly limits: ExtractLimits,
  ) {}

  async write(header: tarStream.Headers, stream: Readable): Promise<void> {
    if (++this.entries > this.limits.maxEntries) throw new UnikError('bad-request', `the archive has more than ${this.limits.maxEntries} entries`);
    const parts = entryComponents(header.name);
    const key = parts.join('/');
    if (!parts.length) {
      if (header.type !== 'directory') throw refuse(header.name, 'not a file name');
      stream.resume();
      return;
    }
    const target = await this.parentOf(parts, header.name);
    switch (header.type) {
      case 'directory':
        stream.resume();
        await this.mkdirOnce(target);
        return;
      case 'file':
      case 'contiguous-file':
        await this.writeFile(header, stream, target, key);
        return;
      case 'symlink': {
        stream.resume();
        const linkname = header.linkname ?? '';
        if (!symlinkStaysInside(parts, linkname)) throw refuse(header.name, `symlink to "${linkname}" leads outside the folder`);
        await this.clear(target, header.name);
        await symlink(linkname, target);
        this.regular.delete(key);
        return;
      }
      case 'link': {
        stream.resume();
        const from = entryComponents(header.linkname ?? '').join('/');
        if (!this.regular.has(from)) throw refuse(header.name, `hard link to "${header.linkname}", which is not a file of the archive`);
        await this.clear(target, header.name);
        await fsp.link(path.join(this.root, from), target);
        this.regular.add(key);
        return;
      }
      default:
        throw refuse(header.name, `${header.type} entries are not allowed`);
    }
  }

  private async writeFile(header: tarStream.Headers, stream: Readable, target: string, key: string): Promise<void> {
    const size = header.size ?? 0;
    if (this.bytes + size > this.limits.maxBytes) throw new UnikError('bad-request', `the archive's files exceed ${this.limits.maxBytes} bytes`);
    await this.clear(target, header.name);
    const mode = (header.mode ?? 0o644) & 0o111 ? 0o755 : 0o644;
    const flags = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW;
    const out = await fd.open(target, flags, mode);
    await pipeline(stream, fs.createWriteStream('', { fd: out }));
    this.bytes += size;
    this.files++;
    this.regular.add(key);
  }

  /** The entry's path on disk, once each of its parents is a real directory (created if missing). */
  private async parentOf(parts: string[], name: string): Promise<string> {
    let dir = this.root;
    for (const part of parts.slice(0, -1)) {
      dir = path.join(dir, part);
      const st = await fsp.lstat(dir).catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? undefined : Promise.reject(err)));
      if (!st) await fsp.mkdir(dir, { mode: 0o755 });
      else if (!st.isDirectory()) throw refuse(name, `its parent "${path.relative(this.root, dir)}" is not a directory`);
    }
    return path.join(dir, parts.at(-1)!);
  }

  private async mkdirOnce(target: string): Promise<void> {
    const st = await fsp.lstat(target).catch(() => undefined);
    if (st?.isDirectory()) return;
    if (st) await fsp.unlink(target);
    await fsp.mkdir(target, { mode: 0o755 });
  }

  /** A later entry of the same name replaces a file or link (never writing through it); a directory stays. */
  private async clear(target: string, name: string): Promise<void> {
    const st = await fsp.lstat(target).catch(() => undefined);
    if (!st) return;
    if (st.isDirectory()) throw refuse(name, 'a directory of that name exists');
    await fsp.unlink(target);
  }
}

function toUnikError(err: unknown): UnikError {
  if (err instanceof UnikError) return err;
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOSPC' || e.code === 'EDQUOT') return new UnikError('insufficient-storage', 'no space left on the device for the archive');
  if (e.code?.startsWith('Z_')) return new UnikError('bad-request', `the gzip stream is corrupt: ${e.message}`);
  if (!e.code) return new UnikError('bad-request', `not a valid tar archive: ${e.message}`);
  return new UnikError('failed', `could not extract the archive: ${e.message}`);
}
