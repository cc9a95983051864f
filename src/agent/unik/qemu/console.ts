// An instance's serial console: qemu appends it to console.log (O_APPEND, so it may be cut short
// under qemu's feet), which is the instance's log. Kept bounded: past MAX_BYTES, its last KEEP_BYTES
// go to console.prev.log and console.log starts again empty.
import { truncate } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { writeFileAtomic } from '../../../shared/atomicFile.js';
import fs, { fd } from '../../../shared/fsAsync.js';

export const MAX_CONSOLE_BYTES = 8 * 1024 * 1024;
export const KEEP_BYTES = 1024 * 1024;

const previous = (file: string) => path.join(path.dirname(file), 'console.prev.log');

/** What the init prints just before it runs the app: the instance is `pending` until the console shows it. */
export const APP_STARTED = 'bosun-init: starting the app';
/** the init prints it within its first lines; kernel messages before it (debug mode) stay well under this */
const STARTED_WITHIN = 1024 * 1024;

/** Whether the console of the current boot shows the app started (a rotated console did, long ago). */
export async function appStarted(file: string): Promise<boolean> {
  if ((await size(previous(file))) > 0) return true;
  return (await headRaw(file, STARTED_WITHIN)).includes(APP_STARTED);
}

async function headRaw(file: string, bytes: number): Promise<string> {
  try {
    const f = await fd.open(file, 'r');
    try {
      const buf = Buffer.alloc(Math.min(bytes, (await fd.fstat(f)).size));
      const { bytesRead } = await fd.read(f, buf, 0, buf.length, 0);
      return buf.subarray(0, bytesRead).toString('latin1');
    } finally {
      await fd.close(f);
    }
  } catch {
    return '';
  }
}

export async function size(file: string): Promise<number> {
  return fs.lstat(file).then(
    (s) => s.size,
    () => 0,
  );
}

/** The last `bytes` of a file (all of it when shorter; '' when there is none). */
export async function tailRaw(file: string, bytes: number): Promise<string> {
  try {
    const f = await fd.open(file, 'r');
    try {
      const { size: total } = await fd.fstat(f);
      const buf = Buffer.alloc(Math.min(bytes, total));
      const { bytesRead } = await fd.read(f, buf, 0, buf.length, total - buf.length);
      return buf.subarray(0, bytesRead).toString('utf8');
    } finally {
      await fd.close(f);
    }
  } catch {
    return '';
  }
}

/** The newest `bytes` the console printed, across a rotation. */
export async function consoleTail(file: string, bytes: number): Promise<string> {
  const now = await tailRaw(file, bytes);
  const before = now.length < bytes ? await tailRaw(previous(file), bytes - Buffer.byteLength(now)) : '';
  return before + now;
}

/** Rotates the console once it is past `max` bytes; a new start removes both files. */
export async function rotateConsole(file: string, max = MAX_CONSOLE_BYTES, keep = KEEP_BYTES): Promise<boolean> {
  if ((await size(file)) <= max) return false;
  await writeFileAtomic(previous(file), await tailRaw(file, keep));
  await promisify(truncate)(file, 0);
  return true;
}

export async function clearConsole(file: string): Promise<void> {
  for (const f of [file, previous(file)]) await fs.rm(f, { force: true });
}

/** What is appended to the console from now on, until the signal aborts (after a rotation or restart: from 0 again). */
export async function* follow(file: string, signal: AbortSignal): AsyncIterable<Buffer> {
  let offset = await size(file);
  while (!signal.aborted) {
    const now = await size(file);
    if (now < offset) offset = 0;
    if (now > offset) {
      const f = await fd.open(file, 'r');
      try {
        const buf = Buffer.alloc(Math.min(64 * 1024, now - offset));
        const { bytesRead } = await fd.read(f, buf, 0, buf.length, offset);
        offset += bytesRead;
        if (bytesRead) yield buf.subarray(0, bytesRead);
      } finally {
        await fd.close(f);
      }
      continue;
    }
    await new Promise<void>((r) => {
      const t = setTimeout(done, 200);
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        r();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
