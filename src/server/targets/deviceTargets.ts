// Each device's target state, materialised in `device_target` whenever something it depends on
// changes (a release, a registry's credentials, a device's name), so that a device's poll is one
// indexed read and its ETag a stored digest. A device gets, per project, the newest release that
// lists it, or (when it joined the project after its releases were made) the project's active one;
// registry credentials only for the registries those releases use.
import { createHash } from 'node:crypto';
import type { Selectable } from 'kysely';
import stringify from 'safe-stable-stringify';
import type { RegistryCredentials, TargetState } from '../../shared/targetState.js';
import { validateTargetState } from '../../shared/validateTarget.js';
import type { SecretBox } from '../auth/secretBox.js';
import { nowIso, type ServerDb, type ServerTables } from '../db/database.js';
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
   * and wakes their long polls. Returns the devices whose target changed.
   */
  async refresh(deviceIds?: readonly string[]): Promise<string[]> {
    const ids = deviceIds ?? (await this.db.selectFrom('device').select('id').execute()).map((d) => d.id);
    const changed: string[] = [];
    let registries: Map<number, RegistryRecord> | undefined;
    for (const id of ids) {
      const target = await this.build(id, (registries ??= await this.registries()));
      if (!target) continue;
      const json = stringify(target)!;
      const etag = createHash('sha256').update(json).digest('hex').slice(0, 32);
      const current = await this.etag(id);
      if (current === etag) continue;
      await this.db
        .insertInto('device_target')
        .values({ device_id: id, etag, target_json: json, updated_at: nowIso() })
        .onConflict((oc) => oc.column('device_id').doUpdateSet({ etag, target_json: json, updated_at: nowIso() }))
        .execute();
      changed.push(id);
    }
    if (changed.length) await this.notifier.notify(changed);
    return changed;
  }

  /**
   * The device's target from the database; undefined for an unknown device. `registries` (with
   * their passwords opened) is read once per refresh, not once per device.
   */
  async build(deviceId: string, registries?: ReadonlyMap<number, RegistryRecord>): Promise<TargetState | undefined> {
    const device = await this.db.selectFrom('device').select(['id', 'name']).where('id', '=', deviceId).executeTakeFirst();
    if (!device) return undefined;
    // per project, the newest release that lists this device
    const releases = await this.db
      .selectFrom('release')
      .innerJoin('release_device', 'release_device.release_id', 'release.id')
      .innerJoin('project', 'project.id', 'release.project_id')
      .select(releaseColumns)
      .where('release_device.device_id', '=', deviceId)
      .orderBy('release.id', 'desc')
      .execute();
    const newest = new Map<number, (typeof releases)[number]>();
    for (const r of releases) if (!newest.has(r.project_id)) newest.set(r.project_id, r);
    // a device that joined a project after its releases were made runs the project's active release
    const joined = await this.db
      .selectFrom('project_device')
      .innerJoin('release', 'release.project_id', 'project_device.project_id')
      .innerJoin('project', 'project.id', 'release.project_id')
      .select(releaseColumns)
      .where('project_device.device_id', '=', deviceId)
      .orderBy('release.id', 'desc')
      .execute();
    for (const r of joined) if (!newest.has(r.project_id)) newest.set(r.project_id, r);
    registries ??= await this.registries();
    const target: TargetState = { name: device.name, apps: {}, registries: {} };
    for (const r of newest.values()) {
      const rows = await this.db.selectFrom('release_container').selectAll().where('release_id', '=', r.id).orderBy('position').execute();
      const containers = rows.map(releaseContainerOf);
      const { app, registries: used } = releaseApp(
        { id: r.id, version_hash: r.version_hash, remove_containers: JSON.parse(r.remove_containers) as string[], project: { id: r.project_id, name: r.project_name, default_registry: r.default_registry_id } },
        containers,
        registries,
      );
      target.apps[String(r.project_id)] = app;
      Object.assign(target.registries as Record<string, RegistryCredentials>, used);
    }
    return validateTargetState(target);
  }

  private async registries(): Promise<Map<number, RegistryRecord>> {
    const rows = await this.db.selectFrom('registry').select(['id', 'url', 'username', 'password_sealed']).execute();
    return new Map(rows.map((r) => [r.id, { id: r.id, url: r.url, username: r.username, password: this.secrets.open(r.password_sealed) }]));
  }
}
