// Which host directories `purge_data` may empty. A release's binds name host paths; purging one
// deletes what is in it, so system folders and top-level folders are refused outright, on the
// server (the release is rejected) and on the agent (the step fails) alike.
import path from 'node:path';

const SYSTEM_ROOTS = ['/bin', '/boot', '/dev', '/etc', '/lib', '/lib32', '/lib64', '/proc', '/run', '/sbin', '/sys', '/usr', '/var/lib/docker', '/var/run'];

/** Why this bind source cannot be purged, or undefined when it can. */
export function purgeRefusal(hostPath: string): string | undefined {
  const p = path.posix.normalize(hostPath);
  if (!p.startsWith('/') || p.split('/').filter(Boolean).length < 2) {
    return `purge_data would empty ${hostPath}: only folders at least two levels deep (like /home/app/data) are purged`;
  }
  const root = SYSTEM_ROOTS.find((r) => p === r || p.startsWith(`${r}/`));
  return root ? `purge_data would empty ${hostPath}, inside the system folder ${root}` : undefined;
}
