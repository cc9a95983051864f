// What every qemu image is made of besides the app: a kernel from Debian's linux-image-*-cloud-amd64,
// its virtio modules, and Debian's static busybox. Fetched once with `apt-get download` into the cache
// folder and unpacked there with `dpkg-deb -x` (never installed on the host); assets.json, written
// last and atomically, says the cache is complete.
import path from 'node:path';
import { writeFileAtomic } from '../../../shared/atomicFile.js';
import fs from '../../../shared/fsAsync.js';
import { UnikError } from '../provider.js';
import { loadOrder, moduleDepends, VIRTIO_MODULES } from './guest.js';
import { run } from './run.js';

export const KERNEL_META_PACKAGE = 'linux-image-cloud-amd64';
const PACKAGE = /^[a-z0-9][a-z0-9.+-]{1,100}$/;
const DOWNLOAD_MS = 10 * 60_000;

export interface GuestAssets {
  kernelPackage: string;
  kernel: string;
  busybox: string;
  /** in load order */
  modules: Array<{ name: string; file: string }>;
}

/** The versioned kernel package the meta-package points at now (`apt-cache depends`). */
export function kernelPackageOf(aptCacheDepends: string): string | undefined {
  const m = /Depends:\s*(linux-image-[^\s<>]+-cloud-amd64)\s*$/m.exec(aptCacheDepends);
  return m && PACKAGE.test(m[1]!) ? m[1] : undefined;
}

export async function guestAssets(cacheDir: string): Promise<GuestAssets> {
  const root = path.join(cacheDir, 'qemu-guest');
  const stamp = path.join(root, 'assets.json');
  const cached = await readAssets(stamp);
  if (cached) return cached;
  const depends = await run('apt-cache', ['depends', KERNEL_META_PACKAGE], { timeoutMs: 60_000 });
  const kernelPackage = kernelPackageOf(depends);
  if (!kernelPackage) throw new UnikError('failed', `apt-cache does not know ${KERNEL_META_PACKAGE} (run apt-get update)`);
  // a folder of this process's own: two agents (or test runs) sharing the cache may fetch at once
  const work = path.join(root, `${kernelPackage}.${process.pid}.tmp`);
  await fs.rm(work, { recursive: true, force: true });
  await fs.mkdir(path.join(work, 'debs'), { recursive: true });
  await run('apt-get', ['download', kernelPackage, 'busybox-static'], { cwd: path.join(work, 'debs'), timeoutMs: DOWNLOAD_MS });
  for (const deb of await fs.readdir(path.join(work, 'debs'))) {
    if (deb.endsWith('.deb')) await run('dpkg-deb', ['-x', path.join(work, 'debs', deb), path.join(work, 'root')], { timeoutMs: DOWNLOAD_MS });
  }
  await fs.rm(path.join(work, 'debs'), { recursive: true, force: true });
  const final = path.join(root, kernelPackage);
  await fs.rename(work, final).catch(async () => {
    // another fetch got there first (or an earlier one was cut short before assets.json): use it when it is whole
    if (await readAssets(stamp)) return fs.rm(work, { recursive: true, force: true });
    await fs.rm(final, { recursive: true, force: true });
    await fs.rename(work, final);
  });
  const assets = await locate(path.join(final, 'root'), kernelPackage);
  await writeFileAtomic(stamp, JSON.stringify(assets), 0o644);
  return assets;
}

async function readAssets(stamp: string): Promise<GuestAssets | undefined> {
  try {
    const a = JSON.parse(await fs.readFile(stamp, 'utf8')) as GuestAssets;
    for (const f of [a.kernel, a.busybox, ...a.modules.map((m) => m.file)]) await fs.access(f);
    return a;
  } catch {
    return undefined;
  }
}

async function locate(root: string, kernelPackage: string): Promise<GuestAssets> {
  const vmlinuz = (await fs.readdir(path.join(root, 'boot'))).find((f) => f.startsWith('vmlinuz-'));
  if (!vmlinuz) throw new UnikError('failed', `${kernelPackage} holds no vmlinuz`);
  const release = vmlinuz.slice('vmlinuz-'.length);
  const files = new Map<string, string>();
  await findModules(path.join(root, 'lib/modules', release, 'kernel'), files, 0);
  const depends = new Map<string, string[]>();
  for (const name of VIRTIO_MODULES) {
    const file = files.get(name);
    if (!file) throw new UnikError('failed', `${kernelPackage} has no module ${name}.ko`);
    depends.set(name, moduleDepends(await fs.readFile(file)));
  }
  const modules = loadOrder(VIRTIO_MODULES, depends).map((name) => ({ name, file: files.get(name)! }));
  return { kernelPackage, kernel: path.join(root, 'boot', vmlinuz), busybox: path.join(root, 'bin/busybox'), modules };
}

async function findModules(dir: string, found: Map<string, string>, depth: number): Promise<void> {
  if (depth > 8) return;
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    if (e.isDirectory()) await findModules(path.join(dir, e.name), found, depth + 1);
    else if (e.isFile() && e.name.endsWith('.ko') && VIRTIO_MODULES.includes(e.name.slice(0, -3))) found.set(e.name.slice(0, -3), path.join(dir, e.name));
  }
}
