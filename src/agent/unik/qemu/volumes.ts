// A volume is an ext2 image made by `mke2fs -d` from a folder (no loop mount, no root needed), or
// with UniK's raw=true the uploaded disk image itself (copied, size-checked, never mounted on the
// host: only the VM's kernel reads it), attached to a VM as a virtio disk.
import { constants, copyFile, truncate } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import fs from '../../../shared/fsAsync.js';
import { UnikError } from '../provider.js';
import { run } from './run.js';

const MiB = 1024 * 1024;
export const MAX_VOLUME_MB = 64 * 1024;
const MAX_ENTRIES = 100_000;

/** The size of a folder's contents as ext2 would hold them (blocks of 4 KiB, an inode each), never following a link. */
export async function folderUsage(dir: string): Promise<{ bytes: number; entries: number }> {
  let bytes = 0;
  let entries = 0;
  const walk = async (d: string, depth: number) => {
    if (depth > 64) throw new UnikError('bad-request', 'the volume data is nested too deep');
    for (const e of await fs.readdir(d, { withFileTypes: true })) {
      if (++entries > MAX_ENTRIES) throw new UnikError('bad-request', `the volume data has more than ${MAX_ENTRIES} entries`);
      const st = await fs.lstat(path.join(d, e.name));
      bytes += Math.ceil(st.size / 4096) * 4096 + 4096;
      if (st.isDirectory()) await walk(path.join(d, e.name), depth + 1);
    }
  };
  await walk(dir, 0);
  return { bytes, entries };
}

/** The size to give a volume: the one asked for (checked against the data), or the data's plus room. */
export function volumeSizeMb(askedMb: number, usage?: { bytes: number; entries: number }): number {
  const needed = usage ? Math.ceil((usage.bytes * 1.2 + usage.entries * 256) / MiB) + 2 : 1;
  if (!Number.isInteger(askedMb) || askedMb < 0 || askedMb > MAX_VOLUME_MB) throw new UnikError('bad-request', `volume size must be 0-${MAX_VOLUME_MB} MB`);
  if (askedMb === 0) return Math.max(needed, 2);
  if (askedMb < needed) throw new UnikError('bad-request', `a volume of ${askedMb} MB cannot hold the data: it needs ${needed} MB`);
  return askedMb;
}

export async function makeExt2(file: string, sizeMb: number, entries: number, dataDir?: string): Promise<void> {
  const { bavail, bsize } = await fs.statfs(path.dirname(file));
  if (bavail * bsize < sizeMb * MiB + 16 * MiB) throw new UnikError('insufficient-storage', `not enough disk space for a ${sizeMb} MB volume`);
  const args = ['-q', '-F', '-t', 'ext2', '-m', '0', '-N', String(entries + 64), '-E', 'root_owner=0:0'];
  if (dataDir) args.push('-d', dataDir);
  await run('mke2fs', [...args, file, `${sizeMb}M`], { timeoutMs: 10 * 60_000 });
}

const SECTOR = 512;

/**
 * A raw disk image as the volume's disk: whole sectors, within the size asked for (or its own,
 * rounded up to whole MB), copied (a reflink where the filesystem can) and grown sparse to that size.
 * Returns the size in MB.
 */
export async function copyRawDisk(source: string, file: string, askedMb: number): Promise<number> {
  const st = await fs.lstat(source);
  if (!st.isFile()) throw new UnikError('bad-request', 'the raw volume data is not a regular file');
  if (st.size === 0) throw new UnikError('bad-request', 'the raw volume data is empty');
  if (st.size % SECTOR) throw new UnikError('bad-request', `a raw disk image is whole ${SECTOR}-byte sectors; this one is ${st.size} bytes`);
  const ownMb = Math.ceil(st.size / MiB);
  if (!Number.isInteger(askedMb) || askedMb < 0 || askedMb > MAX_VOLUME_MB || ownMb > MAX_VOLUME_MB)
    throw new UnikError('bad-request', `volume size must be 0-${MAX_VOLUME_MB} MB`);
  if (askedMb && ownMb > askedMb) throw new UnikError('bad-request', `the raw disk image (${st.size} bytes) does not fit a volume of ${askedMb} MB`);
  const sizeMb = askedMb || ownMb;
  const { bavail, bsize } = await fs.statfs(path.dirname(file));
  if (bavail * bsize < st.size + 16 * MiB) throw new UnikError('insufficient-storage', `not enough disk space for a ${sizeMb} MB volume`);
  await promisify(copyFile)(source, file, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
  await promisify(truncate)(file, sizeMb * MiB);
  return sizeMb;
}
