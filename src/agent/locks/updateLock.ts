// balena-compatible update locks. Each service has a host folder mounted at /tmp/balena and
// /tmp/resin; an app holds its lock while `updates.lock` (or legacy `resin-updates.lock`) exists
// in any of its services' folders. Before stopping or killing anything the agent creates the lock
// files itself, exclusively: if one exists that it did not write, the app holds the lock.
// The agent's own files carry a marker, so it can tell them apart and clean them up.
//
// The service folder is the app's (mode 1777, its containers often run as root): whatever is in it
// may be a symlink, a FIFO, a device node, a directory or a huge file, swapped at any moment. The
// agent only lstat()s, unlinks, renames, and reads small regular files there, without following
// links or blocking (untrustedFs.ts); it creates nothing there but hard links to files it made in
// the app's folder above, which no container can reach. Anything at a lock's name the agent did not
// write is the app's lock, whatever its kind, as balena treats any existing lock file as held: the
// app could hold it with a plain file anyway, and it only ever holds up its own updates.
import nodeFs from 'node:fs';
import path from 'node:path';
import { UpdatesLockedError } from '../../shared/errors.js';
import fs, { fd } from '../../shared/fsAsync.js';
import { randomHex } from '../randomHex.js';
import { lockDirOf } from '../reconciler/serviceSpec.js';
import { discard, exists, readSmallFile } from '../untrustedFs.js';

export const LOCK_FILES = ['updates.lock', 'resin-updates.lock'] as const;
export const HANDOVER_FILES = ['handover-complete', 'resin-kill-me'] as const;
const AGENT_MARKER = 'bosun-agent-lock\n';
/** temp files, in `<lock root>/<app>` (service names never start with a dot) */
const TEMP_PREFIX = '.bosun-lock-';
const { O_CREAT, O_EXCL, O_NOFOLLOW, O_WRONLY } = nodeFs.constants;

export class UpdateLocks {
  /** apps whose locks the agent currently holds */
  private readonly held = new Set<number>();

  constructor(private readonly lockRoot: string) {}

  heldByAgent(): ReadonlySet<number> {
    return this.held;
  }

  dirOf(appId: number, service: string): string {
    return lockDirOf(this.lockRoot, appId, service);
  }

  /**
   * Creates every service's folder, writable by any container user (as balena does, mode 1777).
   * A container can change what is inside, and chmod it, but not replace the folder (its mount point).
   */
  async ensureDir(appId: number, service: string): Promise<string> {
    const dir = this.dirOf(appId, service);
    await fs.mkdir(dir, { recursive: true });
    if (!(await fs.lstat(dir)).isDirectory()) throw new Error(`${dir} is not a folder`);
    await fs.chmod(dir, 0o1777);
    return dir;
  }

  /**
   * Takes the lock of every listed service of the app, or none. With `force`, whatever the app
   * holds the lock with is removed first (the user asked to override).
   */
  async take(appId: number, services: string[], force = false): Promise<void> {
    const created: string[] = [];
    try {
      for (const service of services) {
        const dir = await this.ensureDir(appId, service);
        for (const file of LOCK_FILES) {
          if (await this.claim(appId, dir, file, force)) created.push(path.join(dir, file));
        }
      }
    } catch (err) {
      await Promise.all(created.map((p) => this.removeIfOurs(p)));
      throw err;
    }
    this.held.add(appId);
  }

  /** Releases the agent's locks in every service folder of the app (services of a removed app included). */
  async release(appId: number): Promise<void> {
    for (const dir of await this.serviceDirs(this.appDir(appId))) {
      for (const file of LOCK_FILES) await this.removeIfOurs(path.join(dir, file));
    }
    this.held.delete(appId);
  }

  /** The lock files the app itself holds (empty when free). */
  async heldByApp(appId: number): Promise<string[]> {
    const held: string[] = [];
    for (const dir of await this.serviceDirs(this.appDir(appId))) {
      for (const file of LOCK_FILES) {
        const p = path.join(dir, file);
        if (await this.heldByAppAt(p)) held.push(p);
      }
    }
    return held;
  }

  /** Whether the lock file at `p` (one a take failed on) is the app's: a take would fail on it. */
  async heldByAppAt(p: string): Promise<boolean> {
    return (await exists(p)) && !(await isAgentLock(p));
  }

  /** After a restart: lock files a previous run of the agent left behind are ours to remove. */
  async removeStaleAgentLocks(): Promise<number> {
    let removed = 0;
    const apps = await fs.readdir(this.lockRoot).catch(() => [] as string[]);
    for (const app of apps) {
      const appDir = path.join(this.lockRoot, app);
      const temps = (await fs.readdir(appDir).catch(() => [] as string[])).filter((f) => f.startsWith(TEMP_PREFIX));
      await Promise.all(temps.map((f) => fs.unlink(path.join(appDir, f)).catch(() => undefined)));
      for (const dir of await this.serviceDirs(appDir)) {
        for (const file of LOCK_FILES) {
          if (await this.removeIfOurs(path.join(dir, file))) removed++;
        }
      }
    }
    return removed;
  }

  /** Anything at a handover file's name (a link or a folder too) is the new container's signal. */
  async handoverComplete(appId: number, service: string): Promise<boolean> {
    for (const file of HANDOVER_FILES) {
      if (await exists(path.join(this.dirOf(appId, service), file))) return true;
    }
    return false;
  }

  /** A new container must signal its own handover, not find the previous one's marker. */
  async clearHandover(appId: number, service: string): Promise<void> {
    for (const file of HANDOVER_FILES) await discard(this.dirOf(appId, service), file);
  }

  /** The app's folder, which holds its service folders and the agent's temp files; no container sees it. */
  private appDir(appId: number): string {
    return path.join(this.lockRoot, String(appId));
  }

  /** The service folders in an app's folder, temp files aside. */
  private async serviceDirs(appDir: string): Promise<string[]> {
    const names = await fs.readdir(appDir).catch(() => [] as string[]);
    return names.filter((n) => !n.startsWith('.')).map((n) => path.join(appDir, n));
  }

  /** true when this call created the lock file; false when it was already the agent's. */
  private async claim(appId: number, dir: string, file: string, force: boolean): Promise<boolean> {
    const p = path.join(dir, file);
    if (await this.linkMarker(appId, p)) return true;
    if (await isAgentLock(p)) return false;
    if (!force) throw new UpdatesLockedError(appId, p);
    await discard(dir, file);
    if (await this.linkMarker(appId, p)) return true;
    throw new UpdatesLockedError(appId, p); // the app took it again meanwhile
  }

  /**
   * Creates the marked lock file at `p` unless something is there. The marker is written (and
   * synced) to a new file of an unpredictable name in the app's folder, out of every container's
   * reach, then hard-linked into place: link() follows no link and fails if anything exists at
   * `p`, and a crash can never leave an empty lock file that would look like the app's.
   */
  private async linkMarker(appId: number, p: string): Promise<boolean> {
    const tmp = path.join(this.appDir(appId), `${TEMP_PREFIX}${await randomHex(12)}`);
    const f = await fd.open(tmp, O_CREAT | O_EXCL | O_NOFOLLOW | O_WRONLY, 0o644);
    try {
      try {
        await fs.writeFile(f, AGENT_MARKER);
        await fd.fsync(f);
      } finally {
        await fd.close(f);
      }
      await fs.link(tmp, p);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      return false;
    } finally {
      await fs.unlink(tmp);
    }
  }

  private async removeIfOurs(p: string): Promise<boolean> {
    if (!(await isAgentLock(p))) return false;
    // unlink never follows; if the app swapped in a folder meanwhile, that is its lock now
    await fs.unlink(p).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT' && err.code !== 'EISDIR') throw err;
    });
    return true;
  }
}

/** The agent's lock: a small regular file with its marker. Anything else (of any kind) is the app's. */
async function isAgentLock(p: string): Promise<boolean> {
  return (await readSmallFile(p, AGENT_MARKER.length))?.toString() === AGENT_MARKER;
}
