// Each device's target state, materialised in `device_target` whenever something it depends on
// changes (a release, a registry's credentials, a device's name), so that a device's poll is one
// indexed read and its ETag a stored digest. A device gets, per project, the newest release that
// lists it, or (when it joined the project after its releases were made) the project's active one;
// registry credentials only for the registries those releases use. The devices' deployment records
// follow their targets (deployments/followTargets.ts).
//
// Registry passwords stay sealed at rest: a stored target names each registry's password in the
// form the registry table keeps it (`password_sealed`), and `served()` opens it only as the target
// is sent to its device. The ETag is the digest of the stored form, so it is the same at every serve
// and changes when a registry's credentials do (a new password is sealed anew). A device whose
// target cannot be built (a registry row an earlier version stored unchecked) keeps its last target;
// the reason is logged and shown on the device (`target_error`), and the other devices go on.
import { createHash } from 'node:crypto';
import type { Selectable } from 'kysely';
import stringify from 'safe-stable-stringify';
import type { AppTarget, RegistryCredentials, TargetState } from '../../shared/targetState.js';
import { validateTargetState } from '../../shared/validateTarget.js';
import type { SecretBox } from '../auth/secretBox.js';
import { followTargets } from '../deployments/followTargets.js';
import { inChunks, nowIso, type ServerDb, type ServerTables } from '../db/database.js';
import type { DeviceNotifier } from '../wakeups/notifier.js';
import { dependentTargets, withDependentRegistries } from './dependentTarget.js';
import { releaseApp, type RegistryRecord, type ReleaseContainer } from './releaseTarget.js';

/** A stored `release_container` row as the container it is. */
export const releaseContainerOf = (c: Selectable<ServerTables['release_container']>): ReleaseContainer => ({
  name: c.name,
  image: c.image,
  tag: c.tag,
  required_tags: JSON.parse(c.required_tags) as string[],
  startup_parameters: JSON.parse(c.startup_parameters) as ReleaseContainer['startup_parameters'],
  purge_data: c.purge_data === 1,
  registry: c.registry_id,
});

/** What a device's target takes of each release it runs. */
const releaseColumns = [
  'release.id',
  'release.version_hash',
  'release.remove_containers',
  'release.project_id',
  'project.name as project_name',
  'project.default_registry_id',
] as const;

/** Devices per batch of a refresh: its reads, its one upsert, its one notification. */
const BATCH = 500;

/** A target as stored: safe-stable-stringify's JSON (keys sorted, `registries` last) and its digest. */
interface BuiltTarget {
  json: string;
  etag: string;
  /** project id → the release the target runs of it */
  releases: ReadonlyMap<number, number>;
}
/** Why a device's target could not be built. */
interface BuildFailure {
  error: string;
}

/** A registry of a stored target: its password as the registry table keeps it, sealed with the server key. */
interface SealedRegistry {
  url: string;
  username: string;
  password_sealed: string;
}
/** A target as stored in `device_target`. */
export type StoredTargetState = Omit<TargetState, 'registries'> & { registries: Record<string, SealedRegistry> };

/** The last key of a stored target: a JSON string never holds an unescaped quote, so its last match is the top-level key. */
const REGISTRIES_KEY = ',"registries":';
/** Opened registry sets kept (their JSON), so that a fleet woken at once is not decrypted device by device. */
const OPENED_CACHE = 64;

const digest = (json: string) => createHash('sha256').update(json).digest('hex').slice(0, 32);

export class DeviceTargets {
  /** sealed registries JSON → opened registries JSON */
  private readonly opened = new Map<string, string>();

  constructor(
    private readonly db: ServerDb,
    private readonly secrets: SecretBox,
    private readonly notifier: DeviceNotifier,
    /** devices whose target could not be built (they keep their last one) */
    private readonly onBuildError: (message: string) => void = () => {},
  ) {}

  /** The target of a device as it is served, with its ETag. */
  async get(deviceId: string): Promise<{ etag: string; target: TargetState } | undefined> {
    const row = await this.db.selectFrom('device_target').select(['etag', 'target_json']).where('device_id', '=', deviceId).executeTakeFirst();
    return row ? { etag: row.etag, target: JSON.parse(this.served(row.target_json)) as TargetState } : undefined;
  }

  /** A stored target's JSON as its device gets it: the registry passwords opened. */
  served(stored: string): string {
    const found = stored.lastIndexOf(REGISTRIES_KEY);
    if (found < 0) return stored; // not written by the builder (a test's hand-made row)
    const at = found + REGISTRIES_KEY.length;
    const sealed = stored.slice(at, -1);
    if (sealed === '{}') return stored;
    let opened = this.opened.get(sealed);
    if (opened === undefined) {
      const registries = JSON.parse(sealed) as Record<string, SealedRegistry>;
      opened = stringify(
        Object.fromEntries(
          Object.entries(registries).map(([key, r]) => [key, { url: r.url, username: r.username, password: this.secrets.open(r.password_sealed) }]),
        ),
      )!;
      if (this.opened.size >= OPENED_CACHE) this.opened.delete(this.opened.keys().next().value!);
      this.opened.set(sealed, opened);
    }
    return `${stored.slice(0, at)}${opened}}`;
  }

  /** The stored targets of these devices (sealed, as stored: `served` opens one), by device. */
  async stored(deviceIds: readonly string[]): Promise<Map<string, { etag: string; target_json: string }>> {
    const rows = await this.db.selectFrom('device_target').select(['device_id', 'etag', 'target_json']).where('device_id', 'in', deviceIds).execute();
    return new Map(rows.map((r) => [r.device_id, { etag: r.etag, target_json: r.target_json }]));
  }

  async etag(deviceId: string): Promise<string | undefined> {
    return (await this.db.selectFrom('device_target').select('etag').where('device_id', '=', deviceId).executeTakeFirst())?.etag;
  }

  /**
   * Recomputes the targets of these devices (all when none are named), stores those that changed
   * and wakes their long polls, batch by batch: the first devices of a large release are woken
   * while later batches are still built, and (on SQLite, whose calls block) the event loop serves
   * the woken polls between batches. Returns the devices whose target changed.
   */
  async refresh(deviceIds?: readonly string[]): Promise<string[]> {
    const ids = deviceIds ?? (await this.db.selectFrom('device').select('id').execute()).map((d) => d.id);
    const changed: string[] = [];
    const releases = new Map<string, ReadonlyMap<number, number>>();
    const builder = new TargetBuilder(this.db, await this.registries());
    for (const batch of inChunks(ids, BATCH)) {
      const [targets, etags] = await Promise.all([builder.build(batch), this.etags(batch)]);
      const built = [...targets].filter((e): e is [string, BuiltTarget] => 'json' in e[1]);
      await this.recordFailures(
        built.map(([id]) => id),
        [...targets].filter((e): e is [string, BuildFailure] => 'error' in e[1]),
      );
      const rows = built
        .filter(([id, t]) => etags.get(id) !== t.etag)
        .map(([id, t]) => ({ device_id: id, etag: t.etag, target_json: t.json, updated_at: nowIso() }));
      if (rows.length) {
        await this.store(rows);
        const woken = rows.map((r) => r.device_id);
        await this.notifier.notify(woken);
        changed.push(...woken);
      }
      for (const [id, t] of built) releases.set(id, t.releases);
      if (rows.length) await new Promise((resolve) => setImmediate(resolve));
    }
    // once every device was woken; also for targets unchanged (a deployment just made of a release older than its target's)
    await followTargets(this.db, releases);
    return changed;
  }

  private async store(rows: { device_id: string; etag: string; target_json: string; updated_at: string }[]): Promise<void> {
    await this.db
      .insertInto('device_target')
      .values(rows)
      .onConflict((oc) =>
        oc
          .column('device_id')
          .doUpdateSet((eb) => ({ etag: eb.ref('excluded.etag'), target_json: eb.ref('excluded.target_json'), updated_at: eb.ref('excluded.updated_at') })),
      )
      .execute();
  }

  /** The device's target from the database, as it would be stored; undefined for an unknown device. */
  async build(deviceId: string): Promise<StoredTargetState | undefined> {
    const built = (await new TargetBuilder(this.db, await this.registries()).build([deviceId])).get(deviceId);
    if (built && 'error' in built) throw new Error(built.error);
    return built ? (JSON.parse(built.json) as StoredTargetState) : undefined;
  }

  /** `target_error` of the devices: set (and logged) for those that failed, cleared for those built. */
  private async recordFailures(built: string[], failed: [string, BuildFailure][]): Promise<void> {
    if (built.length) await this.db.updateTable('device').set({ target_error: null }).where('id', 'in', built).where('target_error', 'is not', null).execute();
    const byError = new Map<string, string[]>();
    for (const [id, { error }] of failed) {
      const ids = byError.get(error) ?? [];
      ids.push(id);
      byError.set(error, ids);
    }
    for (const [error, ids] of byError) {
      await this.db.updateTable('device').set({ target_error: error }).where('id', 'in', ids).execute();
      const some = ids.length > 3 ? `${ids.slice(0, 3).join(', ')} and ${ids.length - 3} more` : ids.join(', ');
      this.onBuildError(`the target of device(s) ${some} could not be built (they keep their last target): ${error}`);
    }
  }

  private async etags(deviceIds: readonly string[]): Promise<Map<string, string>> {
    const rows = await this.db.selectFrom('device_target').select(['device_id', 'etag']).where('device_id', 'in', deviceIds).execute();
    return new Map(rows.map((r) => [r.device_id, r.etag]));
  }

  /** The registries, read once per refresh; `password` holds the sealed password, as the builder stores it. */
  private async registries(): Promise<Map<number, RegistryRecord>> {
    const rows = await this.db.selectFrom('registry').select(['id', 'url', 'username', 'password_sealed']).execute();
    return new Map(rows.map((r) => [r.id, { id: r.id, url: r.url, username: r.username, password: r.password_sealed }]));
  }
}

/**
 * Builds the targets of many devices with a few queries per batch. Devices running the same
 * releases share everything but their name, so each release's app is built once and each set of
 * releases is validated and serialised once; a device adds its name to that JSON.
 */
class TargetBuilder {
  /** each release's app, or why it cannot be built */
  private readonly apps = new Map<number, { projectId: number; app: AppTarget; registries: Record<string, RegistryCredentials> } | BuildFailure>();
  /** sorted release ids → the JSON of `apps` and of `registries` of a target running them */
  private readonly sets = new Map<string, { apps: string; registries: string } | BuildFailure>();

  constructor(
    private readonly db: ServerDb,
    private readonly registries: ReadonlyMap<number, RegistryRecord>,
  ) {}

  async build(deviceIds: readonly string[]): Promise<Map<string, BuiltTarget | BuildFailure>> {
    if (!deviceIds.length) return new Map();
    const [devices, listed, joined] = await Promise.all([
      this.db.selectFrom('device').select(['id', 'name']).where('id', 'in', deviceIds).execute(),
      // per device and project, the newest release that lists the device
      this.db
        .selectFrom('release_device')
        .innerJoin('release', 'release.id', 'release_device.release_id')
        .select(['release_device.device_id', 'release.project_id', (eb) => eb.fn.max('release.id').as('release_id')])
        .where('release_device.device_id', 'in', deviceIds)
        .groupBy(['release_device.device_id', 'release.project_id'])
        .execute(),
      // a device that joined a project after its releases were made runs the project's active (newest) release
      this.db
        .selectFrom('project_device')
        .innerJoin('release', 'release.project_id', 'project_device.project_id')
        .select(['project_device.device_id', 'release.project_id', (eb) => eb.fn.max('release.id').as('release_id')])
        .where('project_device.device_id', 'in', deviceIds)
        .groupBy(['project_device.device_id', 'release.project_id'])
        .execute(),
    ]);
    const releasesOf = new Map<string, Map<number, number>>();
    for (const r of [...listed, ...joined]) {
      const perProject = releasesOf.get(r.device_id) ?? new Map<number, number>();
      if (!perProject.has(r.project_id)) perProject.set(r.project_id, Number(r.release_id));
      releasesOf.set(r.device_id, perProject);
    }
    await this.loadApps(new Set([...releasesOf.values()].flatMap((m) => [...m.values()])));
    const dependents = await dependentTargets(this.db, new Map([...releasesOf].map(([id, m]) => [id, [...m.keys()]])), this.registries);
    const out = new Map<string, BuiltTarget | BuildFailure>();
    for (const device of devices) {
      const set = this.releaseSet([...(releasesOf.get(device.id)?.values() ?? [])].sort((a, b) => a - b));
      if ('error' in set) {
        out.set(device.id, set);
        continue;
      }
      const dep = dependents.get(device.id);
      if (dep && 'error' in dep) {
        out.set(device.id, dep);
        continue;
      }
      // safe-stable-stringify's key order: apps, dependent, name, registries
      const registries = dep ? withDependentRegistries(set.registries, dep.registries) : set.registries;
      const json = `{"apps":${set.apps},${dep ? `"dependent":${dep.json},` : ''}"name":${JSON.stringify(device.name)},"registries":${registries}}`;
      out.set(device.id, { json, etag: digest(json), releases: releasesOf.get(device.id) ?? new Map() });
    }
    return out;
  }

  private releaseSet(releaseIds: number[]): { apps: string; registries: string } | BuildFailure {
    const key = releaseIds.join(',');
    let set = this.sets.get(key);
    if (!set) {
      set = this.buildSet(releaseIds);
      this.sets.set(key, set);
    }
    return set;
  }

  private buildSet(releaseIds: number[]): { apps: string; registries: string } | BuildFailure {
    const target: TargetState = { name: 'device', apps: {}, registries: {} };
    for (const id of releaseIds) {
      const built = this.apps.get(id) ?? { error: `release ${id} was deleted meanwhile` }; // (its deletion refreshes the device again)
      if ('error' in built) return built;
      target.apps[String(built.projectId)] = built.app;
      Object.assign(target.registries as Record<string, RegistryCredentials>, built.registries);
    }
    try {
      validateTargetState(target);
    } catch (err) {
      return { error: `releases ${releaseIds.join(', ')}: ${(err as Error).message}` };
    }
    const sealed = Object.fromEntries(
      Object.entries(target.registries!).map(([k, r]): [string, SealedRegistry] => [k, { url: r.url, username: r.username, password_sealed: r.password }]),
    );
    return { apps: stringify(target.apps)!, registries: stringify(sealed)! };
  }

  private async loadApps(releaseIds: Set<number>): Promise<void> {
    const missing = [...releaseIds].filter((id) => !this.apps.has(id));
    for (const part of inChunks(missing)) {
      const [releases, containers] = await Promise.all([
        this.db.selectFrom('release').innerJoin('project', 'project.id', 'release.project_id').select(releaseColumns).where('release.id', 'in', part).execute(),
        this.db.selectFrom('release_container').selectAll().where('release_id', 'in', part).orderBy('release_id').orderBy('position').execute(),
      ]);
      for (const r of releases) {
        try {
          const { app, registries } = releaseApp(
            {
              id: r.id,
              version_hash: r.version_hash,
              remove_containers: JSON.parse(r.remove_containers) as string[],
              project: { id: r.project_id, name: r.project_name, default_registry: r.default_registry_id },
            },
            containers.filter((c) => c.release_id === r.id).map(releaseContainerOf),
            this.registries,
          );
          this.apps.set(r.id, { projectId: r.project_id, app, registries });
        } catch (err) {
          // what the database holds, not this request, is wrong: only the devices running it wait
          this.apps.set(r.id, { error: `release ${r.id}: ${(err as Error).message}` });
        }
      }
    }
  }
}
