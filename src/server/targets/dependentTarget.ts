// The `dependent` part of a gateway's target (src/shared/dependents.ts): the dependent apps of the
// projects it runs, each with its newest release (image and commit), and the targets of its own
// dependent devices (their app's newest commit, or the commit they are pinned to). Only devices of
// apps the gateway is given are in it. Omitted when there is neither. A release's image goes through
// the same conversion as a container of a normal release (releaseTarget.ts): its registry, or the
// project's default one, prefixes it and its credentials join the target's registries (sealed, as
// deviceTargets.ts stores them).
import stringify from 'safe-stable-stringify';
import type { DependentTarget } from '../../shared/dependents.js';
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
  const [releases, devices] = await Promise.all([
    db
      .selectFrom('dependent_release')
      .select(['id', 'app_id', 'image', 'tag', 'registry_id', 'commit'])
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('dependent_release')
          .select((e) => e.fn.max('id').as('id'))
          .where('app_id', 'in', appIds)
          .groupBy('app_id'),
      )
      .execute(),
    (async () => {
      const rows = [];
      for (const part of inChunks(gateways))
        rows.push(
          ...(await db
            .selectFrom('dependent_device')
            .select(['id', 'uuid', 'app_id', 'gateway_id', 'name', 'device_type', 'pinned_commit', 'target_environment', 'target_config'])
            .where('gateway_id', 'in', part)
            .where('app_id', 'in', appIds)
            .orderBy('id')
            .execute()),
        );
      return rows;
    })(),
  ]);
  // each app's part of a target, built once
  const built = new Map<
    number,
    { projectId: number; target: DependentTarget['apps'][string]; registries: Record<string, SealedRegistry> } | { error: string }
  >();
  for (const a of apps) {
    const r = releases.find((x) => x.app_id === a.id);
    try {
      const img = r
        ? dependentImage(
            { id: a.project_id, name: a.project_name, default_registry: a.default_registry_id },
            { id: r.id, image: r.image, tag: r.commit.startsWith('sha256:') ? r.commit : r.tag, registry: r.registry_id },
            registries,
          )
        : undefined;
      const sealed = Object.fromEntries(
        Object.entries(img?.credentials ?? {}).map(([k, c]): [string, SealedRegistry] => [
          k,
          { url: c.url, username: c.username, password_sealed: c.password },
        ]),
      );
      const release = r && img ? { id: r.id, commit: r.commit, image: img.image, ...(img.registry ? { registry: img.registry } : {}) } : null;
      built.set(a.id, {
        projectId: a.project_id,
        target: { name: a.name, parent_app: a.project_id, device_type: a.device_type, release, config: JSON.parse(a.config) as Record<string, string> },
        registries: sealed,
      });
    } catch (err) {
      built.set(a.id, { error: `dependent app ${a.id}: ${(err as Error).message}` });
    }
  }
  for (const [gateway, projects] of projectsOf) {
    const own = new Set(projects);
    const dependent: DependentTarget = { apps: {}, devices: {} };
    let registriesUsed: Record<string, SealedRegistry> = {};
    let failure: string | undefined;
    for (const a of apps) {
      const b = built.get(a.id)!;
      if (!own.has(a.project_id)) continue;
      if ('error' in b) {
        failure = b.error;
        break;
      }
      dependent.apps[String(a.id)] = b.target;
      registriesUsed = { ...registriesUsed, ...b.registries };
    }
    if (failure) {
      out.set(gateway, { error: failure });
      continue;
    }
    for (const d of devices) {
      const app = dependent.apps[String(d.app_id)];
      if (d.gateway_id !== gateway || !app) continue;
      dependent.devices[d.uuid] = {
        id: d.id,
        app_id: d.app_id,
        name: d.name,
        device_type: d.device_type,
        commit: d.pinned_commit ?? app.release?.commit ?? null,
        environment: JSON.parse(d.target_environment) as Record<string, string>,
        config: JSON.parse(d.target_config) as Record<string, string>,
      };
    }
    if (!Object.keys(dependent.apps).length) continue;
    try {
      const registriesOpen = Object.fromEntries(
        Object.entries(registriesUsed).map(([k, r]) => [k, { url: r.url, username: r.username, password: r.password_sealed }]),
      );
      validateTargetState({ apps: {}, dependent, registries: registriesOpen });
    } catch (err) {
      out.set(gateway, { error: `dependent apps: ${(err as Error).message}` });
      continue;
    }
    out.set(gateway, { json: stringify(dependent)!, registries: registriesUsed });
  }
  return out;
}

/** A target's sealed registries JSON with those of its dependents added. */
export function withDependentRegistries(registriesJson: string, dependents: Record<string, SealedRegistry>): string {
  return Object.keys(dependents).length ? stringify({ ...(JSON.parse(registriesJson) as object), ...dependents })! : registriesJson;
}
