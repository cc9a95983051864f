// Each device's target state, materialised in `device_target` whenever something it depends on
// changes (a release, a registry's credentials, a device's name), so that a device's poll is one
// indexed read and its ETag a stored digest. A device gets, per project, the newest release that
// lists it, or (when it joined the project after its releases were made) the project's active one;
// registry credentials only for the registries those releases use.
import { createHash } from 'node:crypto';
import type { Selectable } from 'kysely';
import stringify from 'safe-stable-stringify';
import type { AppTarget, RegistryCredentials, TargetState } from '../../shared/targetState.js';
import { validateTargetState } from '../../shared/validateTarget.js';
import type { SecretBox } from '../auth/secretBox.js';
import { inChunks, nowIso, type ServerDb, type ServerTables } from '../db/database.js';
import type { TargetNotifier } from './notifier.js';
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
const releaseColumns = ['release.id', 'release.version_hash', 'release.remove_containers', 'release.project_id', 'project.name as project_name', 'project.default_registry_id'] as const;

/** Devices per batch of a refresh: its reads, its one upsert, its one notification. */
const BATCH = 500;

/** A target as stored: safe-stable-stringify's JSON (keys sorted) and its digest. */
interface BuiltTarget {
  json: string;
  etag: string;
}

const digest = (json: string) => createHash('sha256').update(json).digest('hex').slice(0, 32);

export class DeviceTargets {
  constructor(
    private readonly db: ServerDb,
    private readonly secrets: SecretBox,
    private readonly notifier: TargetNotifier,
  ) {}

  /** The stored target of a device, with its ETag. */
  async get(deviceId: string): Promise<{ etag: string; target: TargetState } | undefined> {
    const row = await this.db.selectFrom('device_target').select(['etag', 'target_json']).where('device_id', '=', deviceId).executeTakeFirst();
    return row ? { etag: row.etag, target: JSON.parse(row.target_json) as TargetState } : undefined;
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
    const builder = new TargetBuilder(this.db, await this.registries());
    for (const batch of inChunks(ids, BATCH)) {
      const [targets, etags] = await Promise.all([builder.build(batch), this.etags(batch)]);
      const rows = [...targets].filter(([id, t]) => etags.get(id) !== t.etag).map(([id, t]) => ({ device_id: id, etag: t.etag, target_json: t.json, updated_at: nowIso() }));
      if (!rows.length) continue;
      await this.db
        .insertInto('device_target')
        .values(rows)
        .onConflict((oc) =>
          oc.column('device_id').doUpdateSet((eb) => ({ etag: eb.ref('excluded.etag'), target_json: eb.ref('excluded.target_json'), updated_at: eb.ref('excluded.updated_at') })),
        )
        .execute();
      const woken = rows.map((r) => r.device_id);
      await this.notifier.notify(woken);
      changed.push(...woken);
      await new Promise((resolve) => setImmediate(resolve));
    }
    return changed;
  }

  /** The device's target from the database; undefined for an unknown device. */
  async build(deviceId: string): Promise<TargetState | undefined> {
    const built = (await new TargetBuilder(this.db, await this.registries()).build([deviceId])).get(deviceId);
    return built ? (JSON.parse(built.json) as TargetState) : undefined;
  }

  private async etags(deviceIds: readonly string[]): Promise<Map<string, string>> {
    const rows = await this.db.selectFrom('device_target').select(['device_id', 'etag']).where('device_id', 'in', deviceIds).execute();
    return new Map(rows.map((r) => [r.device_id, r.etag]));
  }

  /** Registries with their passwords opened: read once per refresh, not once per device. */
  private async registries(): Promise<Map<number, RegistryRecord>> {
    const rows = await this.db.selectFrom('registry').select(['id', 'url', 'username', 'password_sealed']).execute();
    return new Map(rows.map((r) => [r.id, { id: r.id, url: r.url, username: r.username, password: this.secrets.open(r.password_sealed) }]));
  }
}

/**
 * Builds the targets of many devices with a few queries per batch. Devices running the same
 * releases share everything but their name, so each release's app is built once and each set of
 * releases is validated and serialised once; a device adds its name to that JSON.
 */
class TargetBuilder {
  private readonly apps = new Map<number, { projectId: number; app: AppTarget; registries: Record<string, RegistryCredentials> }>();
  /** sorted release ids → the JSON of `apps` and of `registries` of a target running them */
  private readonly sets = new Map<string, { apps: string; registries: string }>();

  constructor(
    private readonly db: ServerDb,
    private readonly registries: ReadonlyMap<number, RegistryRecord>,
  ) {}

  async build(deviceIds: readonly string[]): Promise<Map<string, BuiltTarget>> {
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
    const out = new Map<string, BuiltTarget>();
    for (const device of devices) {
      const set = this.releaseSet([...(releasesOf.get(device.id)?.values() ?? [])].sort((a, b) => a - b));
      // safe-stable-stringify's key order: apps, name, registries
      const json = `{"apps":${set.apps},"name":${JSON.stringify(device.name)},"registries":${set.registries}}`;
      out.set(device.id, { json, etag: digest(json) });
    }
    return out;
  }

  private releaseSet(releaseIds: number[]): { apps: string; registries: string } {
    const key = releaseIds.join(',');
    let set = this.sets.get(key);
    if (!set) {
      const target: TargetState = { name: 'device', apps: {}, registries: {} };
      for (const id of releaseIds) {
        const { projectId, app, registries } = this.apps.get(id)!;
        target.apps[String(projectId)] = app;
        Object.assign(target.registries as Record<string, RegistryCredentials>, registries);
      }
      validateTargetState(target);
      set = { apps: stringify(target.apps)!, registries: stringify(target.registries)! };
      this.sets.set(key, set);
    }
    return set;
  }

  private async loadApps(releaseIds: Set<number>): Promise<void> {
    const missing = [...releaseIds].filter((id) => !this.apps.has(id));
    for (const part of inChunks(missing)) {
      const [releases, containers] = await Promise.all([
        this.db.selectFrom('release').innerJoin('project', 'project.id', 'release.project_id').select(releaseColumns).where('release.id', 'in', part).execute(),
        this.db.selectFrom('release_container').selectAll().where('release_id', 'in', part).orderBy('release_id').orderBy('position').execute(),
      ]);
      for (const r of releases) {
        const { app, registries } = releaseApp(
          { id: r.id, version_hash: r.version_hash, remove_containers: JSON.parse(r.remove_containers) as string[], project: { id: r.project_id, name: r.project_name, default_registry: r.default_registry_id } },
          containers.filter((c) => c.release_id === r.id).map(releaseContainerOf),
          this.registries,
        );
        this.apps.set(r.id, { projectId: r.project_id, app, registries });
      }
    }
  }
}
