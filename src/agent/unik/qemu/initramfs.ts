// An image's initramfs (cpio newc, gzip): the init, busybox, the virtio modules and the app; and an
// instance's initrd: that, followed by a small archive holding /bosun/config (the kernel unpacks
// concatenated archives in turn).
import path from 'node:path';
import fs, { fd } from '../../../shared/fsAsync.js';
import { UnikError } from '../provider.js';
import type { GuestAssets } from './assets.js';
import { type CpioEntry, cpioNewc, S_IFDIR, S_IFREG } from './cpio.js';
import { initScript } from './guest.js';
import { checkAppFileName, staticElfProblem } from './validate.js';

const MAX_APP = 512 * 1024 * 1024;
const dir = (name: string): CpioEntry => ({ name, mode: S_IFDIR | 0o755 });
const file = (name: string, data: Buffer, mode = 0o755): CpioEntry => ({ name, mode: S_IFREG | mode, data });

/** The one static executable the uploaded folder holds. */
export async function findApp(sourceDir: string): Promise<{ name: string; file: string }> {
  const entries = await fs.readdir(sourceDir);
  if (entries.length !== 1) throw new UnikError('bad-request', `the tar must hold exactly one file, a static executable (it holds ${entries.length} entries)`);
  const name = entries[0]!;
  checkAppFileName(name);
  const appFile = path.join(sourceDir, name);
  const st = await fs.lstat(appFile);
  if (!st.isFile()) throw new UnikError('bad-request', `${name} is not a regular file`);
  if (st.size > MAX_APP) throw new UnikError('bad-request', `${name} is larger than ${MAX_APP / 1024 / 1024} MiB`);
  const f = await fd.open(appFile, 'r');
  try {
    const head = Buffer.alloc(Math.min(st.size, 8192));
    await fd.read(f, head, 0, head.length, 0);
    const problem = staticElfProblem(head);
    if (problem) throw new UnikError('bad-request', `${name}: ${problem}`);
  } finally {
    await fd.close(f);
  }
  return { name, file: appFile };
}

export async function imageInitramfs(assets: GuestAssets, app: { name: string; file: string }): Promise<Buffer> {
  const entries: CpioEntry[] = ['bin', 'lib', 'lib/modules', 'app', 'bosun', 'etc', 'proc', 'sys', 'dev', 'tmp', 'run'].map(dir);
  entries.push(file('init', Buffer.from(initScript(assets.modules.map((m) => m.name)))));
  entries.push(file('bin/busybox', await fs.readFile(assets.busybox)));
  for (const m of assets.modules) entries.push(file(`lib/modules/${m.name}.ko`, await fs.readFile(m.file), 0o644));
  entries.push(file(`app/${app.name}`, await fs.readFile(app.file)));
  const { gzip } = await import('node:zlib');
  const { promisify } = await import('node:util');
  return promisify(gzip)(cpioNewc(entries));
}

/** The instance's initrd: the image's, then /bosun/config (uncompressed: a few hundred bytes). */
export async function writeInstanceInitrd(imageInitrd: string, settings: string, dest: string): Promise<void> {
  const overlay = cpioNewc([dir('bosun'), file('bosun/config', Buffer.from(settings), 0o644)]);
  const tmp = `${dest}.tmp`;
  const base = await fs.readFile(imageInitrd);
  // the kernel looks for an uncompressed archive after a compressed one only at a 4-byte boundary
  const pad = Buffer.alloc((4 - (base.length % 4)) % 4);
  await fs.writeFile(tmp, Buffer.concat([base, pad, overlay]), { mode: 0o600 });
  await fs.rename(tmp, dest);
}
