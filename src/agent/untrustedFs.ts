// File operations in folders an app container can write: update-lock folders, volumes and
// bind-mounted data. A container, often root, can plant symlinks, FIFOs, device nodes, huge or
// sparse files and deep trees there, and swap one for another at any moment. So nothing here
// follows a link, opens anything but a regular file it has checked, blocks, or reads more than it
// asked for: objects are pinned with O_PATH descriptors (nothing is opened for I/O, a FIFO or a
// device node included) and reached as /proc/self/fd/<fd>/<name>, which resolves no path twice
// (the openat/unlinkat family Node lacks).
import fs from 'node:fs';
import path from 'node:path';
import fsa, { fd as fds } from '../shared/fsAsync.js';
import { randomHex } from './randomHex.js';

/** Linux's value on x86, arm and arm64; Node 20 does not export it */
const O_PATH = 0o10000000;
const { O_DIRECTORY, O_NOCTTY, O_NOFOLLOW, O_NONBLOCK, O_RDONLY } = fs.constants;
/** a deeper tree is refused rather than holding one descriptor per level without bound */
export const MAX_DEPTH = 128;

const viaFd = (dirFd: number, name?: string) => `/proc/self/fd/${dirFd}${name === undefined ? '' : `/${name}`}`;
const code = (err: unknown) => (err as NodeJS.ErrnoException).code ?? '';

/** Opens `p` as a pinned descriptor; undefined when there is nothing there (one of `absent`). */
async function pin(p: string, flags: number, absent: string[] = ['ENOENT']): Promise<number | undefined> {
  try {
    return await fds.open(p, O_PATH | flags);
  } catch (err) {
    if (absent.includes(code(err))) return undefined;
    throw err;
  }
}

/**
 * The content of `p` when it is a regular file of at most `maxBytes`; undefined for anything else
 * (absent, a link, a FIFO, a device node, a directory, a bigger file, a file the app holds a lease on).
 */
export async function readSmallFile(p: string, maxBytes: number): Promise<Buffer | undefined> {
  const f = await pin(p, O_NOFOLLOW);
  if (f === undefined) return undefined;
  try {
    const st = await fds.fstat(f);
    if (!st.isFile() || st.size > maxBytes) return undefined;
    // reopens that very inode, now known to be a regular file; O_NONBLOCK: an app's lease cannot stall us
    const r = await fds.open(viaFd(f), O_RDONLY | O_NONBLOCK | O_NOCTTY).catch((err: unknown) => {
      if (code(err) === 'EAGAIN' || code(err) === 'EWOULDBLOCK') return undefined;
      throw err;
    });
    if (r === undefined) return undefined;
    try {
      const buf = Buffer.alloc(maxBytes + 1);
      const { bytesRead } = await fds.read(r, buf, 0, buf.length, 0);
      return bytesRead > maxBytes ? undefined : buf.subarray(0, bytesRead);
    } finally {
      await fds.close(r);
    }
  } finally {
    await fds.close(f);
  }
}

/** true when something (of any kind, a dangling link included) is at `p`; never follows it. */
export async function exists(p: string): Promise<boolean> {
  try {
    await fsa.lstat(p);
    return true;
  } catch (err) {
    if (code(err) === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Removes whatever is at `name` in the folder `dir` (a folder the container cannot swap itself, like
 * the lock folder it sees as its mount point): unlinked, or for a directory, removed when empty and
 * otherwise moved aside to `.<name>.discarded-<random>` in the same folder, unwalked (what is in it
 * is the app's, and walking it could take as long as the app likes).
 */
export async function discard(dir: string, name: string): Promise<void> {
  const p = path.join(dir, name);
  if (!(await unlinkUnlessDirectory(p))) return;
  try {
    await fsa.rmdir(p);
  } catch (err) {
    if (code(err) === 'ENOENT') return;
    if (code(err) !== 'ENOTEMPTY' && code(err) !== 'EEXIST') throw err;
    await fsa.rename(p, path.join(dir, `.${name}.discarded-${await randomHex(8)}`));
  }
}

/**
 * Empties the folder `folder` resolves to (keeping it): links, FIFOs, device nodes and files are
 * unlinked, never opened or followed; directories are emptied depth-first through descriptors and
 * removed; other file systems mounted inside are left alone. `refuse` sees the folder's real path
 * (symlinks resolved, by the kernel, for the very folder that is emptied) and may veto it.
 * A missing folder has nothing to empty.
 */
export async function emptyFolder(folder: string, refuse?: (realPath: string) => string | undefined): Promise<void> {
  const f = await pin(folder, O_DIRECTORY);
  if (f === undefined) return;
  try {
    const refusal = refuse?.(await fsa.readlink(viaFd(f)));
    if (refusal) throw new Error(refusal);
    await emptyPinned(f, (await fds.fstat(f)).dev, 0, folder);
  } finally {
    await fds.close(f);
  }
}

async function emptyPinned(dirFd: number, dev: number, depth: number, top: string): Promise<void> {
  if (depth >= MAX_DEPTH) throw new Error(`${top} holds folders nested deeper than ${MAX_DEPTH} levels: not purged`);
  // Entries created (or, on some file systems, skipped) while deleting are caught by another pass;
  // what cannot go (a mount point, a folder written to meanwhile) does not loop for ever.
  for (let pass = 0; pass < 3; pass++) {
    let seen = 0;
    for await (const entry of await fsa.opendir(viaFd(dirFd), { bufferSize: 64 })) {
      seen++;
      await removeIn(dirFd, entry.name, dev, depth, top);
    }
    if (!seen) return;
  }
}

async function removeIn(dirFd: number, name: string, dev: number, depth: number, top: string): Promise<void> {
  const p = viaFd(dirFd, name);
  if (!(await unlinkUnlessDirectory(p))) return;
  // swapped for something else since: the next pass sees it
  const sub = await pin(p, O_DIRECTORY | O_NOFOLLOW, ['ENOENT', 'ENOTDIR', 'ELOOP']);
  if (sub === undefined) return;
  try {
    if ((await fds.fstat(sub)).dev !== dev) return; // another file system mounted here
    await emptyPinned(sub, dev, depth + 1, top);
  } finally {
    await fds.close(sub);
  }
  try {
    await fsa.rmdir(p);
  } catch (err) {
    if (!['ENOENT', 'ENOTDIR', 'ENOTEMPTY', 'EEXIST', 'EBUSY'].includes(code(err))) throw err;
  }
}

/** Unlinks what is at `p` (never following it); true when it is a directory, which unlink leaves. */
async function unlinkUnlessDirectory(p: string): Promise<boolean> {
  try {
    await fsa.unlink(p);
    return false;
  } catch (err) {
    if (code(err) === 'ENOENT') return false;
    if (code(err) !== 'EISDIR') throw err;
    return true;
  }
}
