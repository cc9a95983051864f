// Which host folders `purge_data` may empty. A release's binds name host paths and purging one
// deletes what is in it, so binds are purged only inside a data area: strictly below one of the
// data roots, never a root itself (other apps' data may sit beside it). The roots are the folders
// edge devices keep application data in (`/data`: balenaOS and most appliance images; `/mnt/data`:
// a separate data partition; the agent's own `/var/lib/bosun/data`), or those BOSUN_DATA_ROOTS
// lists instead. Named volumes are the app's own and always purgeable. The server checks the path
// as the release writes it; the agent checks it again resolved (symlinks followed) on the device.
import path from 'node:path';

export const DEFAULT_DATA_ROOTS: readonly string[] = ['/data', '/mnt/data', '/var/lib/bosun/data'];

const normal = (p: string) => path.posix.normalize(p).replace(/(.)\/+$/, '$1');

/** The data roots: BOSUN_DATA_ROOTS (absolute folders separated by ':') when set, else the defaults. */
export function dataRoots(env = process.env.BOSUN_DATA_ROOTS): string[] {
  if (!env) return [...DEFAULT_DATA_ROOTS];
  return env
    .split(':')
    .filter((r) => r.startsWith('/'))
    .map(normal)
    .filter((r) => r !== '/');
}

/** Why this bind source cannot be purged, or undefined when it can. */
export function purgeRefusal(hostPath: string, roots: readonly string[] = dataRoots()): string | undefined {
  const p = normal(hostPath);
  if (hostPath.startsWith('/') && roots.some((root) => p.startsWith(`${root}/`))) return undefined;
  const areas = roots.length ? roots.map((r) => `${r}/…`).join(', ') : 'none: BOSUN_DATA_ROOTS names no absolute folder';
  return `purge_data would empty ${hostPath}: only folders inside a data area are purged (${areas})`;
}
