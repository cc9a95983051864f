// balena-compatible update locks. Each service has a host folder mounted at /tmp/balena and
// /tmp/resin; an app holds its lock while `updates.lock` (or legacy `resin-updates.lock`) exists
// in any of its services' folders. Before stopping or killing anything the agent creates the lock
// files itself, exclusively: if one exists that it did not write, the app holds the lock.
// The agent's own files carry a marker, so it can tell them apart and clean them up.
import fs from '../fsAsync.js';
import path from 'node:path';
import { UpdatesLockedError } from '../../shared/errors.js';
import { lockDirOf } from '../reconciler/serviceSpec.js';

export const LOCK_FILES = ['updates.lock', 'resin-updates.lock'] as const;
export const HANDOVER_FILES = ['handover-complete', 'resin-kill-me'] as const;
const AGENT_MARKER = 'bosun-agent-lock\n';
const TEMP_PREFIX = '.bosun-lock-';

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

  /** Creates every service's folder, writable by any container user (as balena does, mode 1777). */
  async ensureDir(appId: number, service: string): Promise<string> {
    const dir = this.dirOf(appId, service);
    await fs.mkdir(dir, { recursive: true });
    await fs.chmod(dir, 0o1777);
    return dir;
  }

  /**
   * Takes the lock of every listed service of the app, or none. With `force`, lock files the app
   * holds are removed first (the user asked to override).
   */
  async take(appId: number, services: string[], force = false): Promise<void> {
    const created: string[] = [];
    try {
      for (const service of services) {
        const dir = await this.ensureDir(appId, service);
        for (const file of LOCK_FILES) {
          const p = path.join(dir, file);
          if (await this.createExclusive(p, force)) created.push(p);
        }
      }
    } catch (err) {
      await Promise.all(created.map((p) => fs.rm(p, { force: true })));
      throw err;
    }
    this.held.add(appId);
  }

  /** Releases the agent's locks in every service folder of the app (services of a removed app included). */
  async release(appId: number): Promise<void> {
    const appDir = path.join(this.lockRoot, String(appId));
    const services = await fs.readdir(appDir).catch(() => [] as string[]);
    for (const service of services) {
      for (const file of LOCK_FILES) await this.removeIfOurs(path.join(appDir, service, file));
    }
    this.held.delete(appId);
  }

  /** The lock files the app itself holds (empty when free). */
  async heldByApp(appId: number): Promise<string[]> {
    const appDir = path.join(this.lockRoot, String(appId));
    const services = await fs.readdir(appDir).catch(() => [] as string[]);
    const held: string[] = [];
    for (const service of services) {
      for (const file of LOCK_FILES) {
        const p = path.join(appDir, service, file);
        const content = await fs.readFile(p, 'utf8').catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : ''));
        if (content !== null && content !== AGENT_MARKER) held.push(p);
      }
    }
    return held;
  }

  /** After a restart: lock files a previous run of the agent left behind are ours to remove. */
  async removeStaleAgentLocks(): Promise<number> {
    let removed = 0;
    const apps = await fs.readdir(this.lockRoot).catch(() => [] as string[]);
    for (const app of apps) {
      const services = await fs.readdir(path.join(this.lockRoot, app)).catch(() => [] as string[]);
      for (const service of services) {
        const dir = path.join(this.lockRoot, app, service);
        for (const file of LOCK_FILES) {
          if (await this.removeIfOurs(path.join(dir, file))) removed++;
        }
        const temps = (await fs.readdir(dir).catch(() => [] as string[])).filter((f) => f.startsWith(TEMP_PREFIX));
        await Promise.all(temps.map((f) => fs.rm(path.join(dir, f), { force: true })));
      }
    }
    return removed;
  }

  async handoverComplete(appId: number, service: string): Promise<boolean> {
    for (const file of HANDOVER_FILES) {
      if (await fs.access(path.join(this.dirOf(appId, service), file)).then(() => true, () => false)) return true;
    }
    return false;
  }

  /** A new container must signal its own handover, not find the previous one's marker. */
  async clearHandover(appId: number, service: string): Promise<void> {
    for (const file of HANDOVER_FILES) await fs.rm(path.join(this.dirOf(appId, service), file), { force: true });
  }

  /**
   * true when this call created the file; false when it was already the agent's. The marker is
   * written to a temp file first and hard-linked into place (link fails if the lock exists), so a
   * crash can never leave an empty lock file that would look like the app's.
   */
  private async createExclusive(p: string, force: boolean): Promise<boolean> {
    const tmp = path.join(path.dirname(p), `${TEMP_PREFIX}${process.pid}-${path.basename(p)}`);
    await fs.writeFile(tmp, AGENT_MARKER, { mode: 0o644 });
    try {
      await fs.link(tmp, p);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      await fs.rm(tmp, { force: true });
    }
    const content = await fs.readFile(p, 'utf8').catch(() => '');
    if (content === AGENT_MARKER) return false;
    const appId = Number(path.basename(path.dirname(path.dirname(p))));
    if (!force) throw new UpdatesLockedError(appId, p);
    await fs.rm(p, { force: true });
    return this.createExclusive(p, false);
  }

  private async removeIfOurs(p: string): Promise<boolean> {
    const content = await fs.readFile(p, 'utf8').catch(() => null);
    if (content !== AGENT_MARKER) return false;
    await fs.rm(p, { force: true });
    return true;
  }
}
