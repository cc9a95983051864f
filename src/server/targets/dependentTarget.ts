// The `dependent` part of a gateway's target (src/shared/dependents.ts): the dependent apps of the
// projects it runs, each with its newest release (image and commit), and the targets of its own
// dependent devices (their app's newest commit, or the commit they are pinned to: that release is in
// its app's `pinned_releases`, so that the gateway can fetch its assets too), and the uuids of its
// devices deleted (tombstones: a gateway that never saw one listed learns it too). Only devices of
// apps the gateway is given are in it. Omitted when there is neither. A release's image goes through
// the same conversion as a container of a normal release (releaseTarget.ts): its registry, or the
// project's default one, prefixes it and its credentials join the target's registries (sealed, as
// deviceTargets.ts stores them).
import stringify from 'safe-stable-stringify';
import type { DependentReleaseTarget, DependentTarget } from '../../shared/dependents.js';
import type { RegistryCredentials } from '../../shared/targetState.js';
import { validateTargetState } from '../../shared/validateTarget.js';
import { inChunks, type ServerDb } from '../db/database.js';
import { releaseApp, type RegistryRecord } from './releaseTarget.js';

/** A registry as a stored target holds it: the password sealed. */
interface SealedRegistry {
  url: string;
  username: string;
  password_sealed: string;
}
/** A gateway's `dependent` JSON and the registries it pulls through, or why it cannot be built. */
export type BuiltDependents = { json: string; registries: Record<string, SealedRegistry> } | { error: string };

/** What a dependent release's image is, as a container of a normal release would pull it. */
export interface DependentImage {
  image: string;
  tag: string;
  registry: number | null;
}
export interface DependentImageProject {
  id: number;
  name: string;
  default_registry: number | null;
}

/**
 * The image reference and registry of a dependent release, through the conversion normal releases
 * get (ValidationErrors name `/containers/0/…`: the caller renames them). `registries` maps ids to
 * their credentials (the builder's: passwords sealed).
 */
export function dependentImage(
  project: DependentImageProject,
  release: DependentImage & { id: number },
  registries: ReadonlyMap<number, RegistryRecord>,
): { image: string; registry?: string; credentials: Record<string, RegistryCredentials> } {
  const container = { name: 'assets', ...release, required_tags: [], startup_parameters: {}, purge_data: false };
  const { app, registries: used } = releaseApp({ id: release.id, version_hash: '00000000', project }, [container], registries);
  const service = app.release.services.assets!;
  return { image: service.image, ...(service.registry ? { registry: service.registry } : {}), credentials: used };
}

/** Each gateway's dependents, given the projects (app ids) each runs; gateways with none are left out. */
export async function dependentTargets(
  db: ServerDb,
  projectsOf: ReadonlyMap<string, readonly number[]>,
  registries: ReadonlyMap<number, RegistryRecord>,
): Promise<Map<string, BuiltDependents>> {
  const out = new Map<string, BuiltDependents>();
  const projectIds = [...new Set([...projectsOf.values()].flat())];
  const gateways = [...projectsOf.keys()];
  if (!projectIds.length || !gateways.length) return out;
  const apps = await db
    .selectFrom('dependent_app')
    .innerJoin('project', 'project.id', 'dependent_app.project_id')
    .select([
      'dependent_app.id',
      'dependent_app.project_id',
      'dependent_app.name',
      'dependent_app.device_type',
      'dependent_app.config',
      'project.name as project_name',
      'project.default_registry_id',
    ])
    .where('dependent_app.project_id', 'in', projectIds)
    .execute();
  if (!apps.length) return out;
  const appIds = apps.map((a) => a.id);
  const devices: DeviceRow[] = [];
  for (const part of inChunks(gateways))
    devices.push(
      ...(await db
        .selectFrom('dependent_device')
        .select(['id', 'uuid', 'app_id', 'gateway_id', 'name', 'device_type', 'pinned_commit', 'target_environment', 'target_config'])
        .where('gateway_id', 'in', part)
        .where('app_id', 'in', appIds)
        .orderBy('id')
        .execute()),
    );
  const tombstones: { uuid: string; gateway_id: string }[] = [];
  for (const part of inChunks(gateways))
    tombstones.push(...(await db.selectFrom('dependent_tombstone').select(['uuid', 'gateway_id']).where('gateway_id', 'in', part).orderBy('uuid').execute()));
  const pins = [...new Set(devices.flatMap((d) => (d.pinned_commit ? [d.pinned_commit] : [])))];
  const releaseColumns = ['id', 'app_id', 'image', 'tag', 'registry_id', 'commit'] as const;
  const [newest, pinned] = await Promise.all([
    db
      .selectFrom('dependent_release')
      .select(releaseColumns)
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('dependent_release')
          .select((e) => e.fn.max('id').as('id'))
          .where('app_id', 'in', appIds)
          .groupBy('app_id'),
      )
      .execute(),
    pins.length ? db.selectFrom('dependent_release').select(releaseColumns).where('app_id', 'in', appIds).where('commit', 'in', pins).execute() : [],
  ]);
  // each release's part of a target, built once (its image as a container's: releaseTarget.ts)
  const projectOf = new Map(apps.map((a) => [a.id, { id: a.project_id, name: a.project_name, default_registry: a.default_registry_id }]));
  const releases = new Map<string, BuiltRelease>();
  for (const r of [...newest, ...pinned]) {
    try {
      const tag = r.commit.startsWith('sha256:') ? r.commit : r.tag;
      const img = dependentImage(projectOf.get(r.app_id)!, { id: r.id, image: r.image, tag, registry: r.registry_id }, registries);
      const sealed = Object.fromEntries(
        Object.entries(img.credentials).map(([k, c]): [string, SealedRegistry] => [k, { url: c.url, username: c.username, password_sealed: c.password }]),
      );
      releases.set(`${r.app_id}:${r.commit}`, {
        target: { id: r.id, commit: r.commit, image: img.image, ...(img.registry ? { registry: img.registry } : {}) },
        registries: sealed,
      });
    } catch (err) {
      releases.set(`${r.app_id}:${r.commit}`, { error: `dependent app ${r.app_id}, release ${r.id}: ${(err as Error).message}` });
    }
  }
  const newestOf = new Map(newest.map((r) => [r.app_id, releases.get(`${r.app_id}:${r.commit}`)!]));
  for (const [gateway, projects] of projectsOf) {
    try {
      const built = gatewayDependents(
        apps.filter((a) => projects.includes(a.project_id)),
        devices.filter((d) => d.gateway_id === gateway),
        tombstones.filter((t) => t.gateway_id === gateway).map((t) => t.uuid),
        newestOf,
        releases,
      );
      if (built) out.set(gateway, built);
    } catch (err) {
      out.set(gateway, { error: (err as Error).message });
    }
  }
  return out;
}

type BuiltRelease = { target: DependentReleaseTarget; registries: Record<string, SealedRegistry> } | { error: string };
interface DeviceRow {
  id: number;
  uuid: string;
  app_id: number;
  gateway_id: string;
  name: string;
  device_type: string;
  pinned_commit: string | null;
  target_environment: string;
  target_config: string;
}

/** One gateway's dependents (undefined when it is given no dependent app); throws why they cannot be built. */
function gatewayDependents(
  apps: { id: number; project_id: number; name: string; device_type: string; config: string }[],
  devices: DeviceRow[],
  deleted: string[],
  newestOf: ReadonlyMap<number, BuiltRelease>,
  releases: ReadonlyMap<string, BuiltRelease>,
): { json: string; registries: Record<string, SealedRegistry> } | undefined {
  if (!apps.length) return undefined;
  const dependent: DependentTarget = { apps: {}, devices: {}, ...(deleted.length ? { deleted } : {}) };
  let used: Record<string, SealedRegistry> = {};
  const release = (built: BuiltRelease | undefined): DependentReleaseTarget | null => {
    if (!built) return null;
    if ('error' in built) throw new Error(built.error);
    used = { ...used, ...built.registries };
    return built.target;
  };
  for (const a of apps) {
    const config = JSON.parse(a.config) as Record<string, string>;
    dependent.apps[String(a.id)] = { name: a.name, parent_app: a.project_id, device_type: a.device_type, release: release(newestOf.get(a.id)), config };
  }
  for (const d of devices) {
    const app = dependent.apps[String(d.app_id)];
    if (!app) continue;
    const commit = d.pinned_commit ?? app.release?.commit ?? null;
    if (commit && commit !== app.release?.commit && !app.pinned_releases?.some((r) => r.commit === commit)) {
      const pinned = release(releases.get(`${d.app_id}:${commit}`));
      if (pinned) app.pinned_releases = [...(app.pinned_releases ?? []), pinned];
    }
    dependent.devices[d.uuid] = {
      id: d.id,
      app_id: d.app_id,
      name: d.name,
      device_type: d.device_type,
      commit,
      environment: JSON.parse(d.target_environment) as Record<string, string>,
      config: JSON.parse(d.target_config) as Record<string, string>,
    };
  }
  const opened = Object.fromEntries(Object.entries(used).map(([k, r]) => [k, { url: r.url, username: r.username, password: r.password_sealed }]));
  try {
    validateTargetState({ apps: {}, dependent, registries: opened });
  } catch (err) {
    throw new Error(`dependent apps: ${(err as Error).message}`);
  }
  return { json: stringify(dependent)!, registries: used };
}

/** A target's sealed registries JSON with those of its dependents added. */
export function withDependentRegistries(registriesJson: string, dependents: Record<string, SealedRegistry>): string {
  return Object.keys(dependents).length ? stringify({ ...(JSON.parse(registriesJson) as object), ...dependents })! : registriesJson;
}
