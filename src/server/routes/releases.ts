// /docker/projects/{project_pk}/releases/: the releases of a project, with AutoPi's paths and shapes.
// Each device runs, per project, the newest release that lists it; creating or changing a release
// records a pending deployment for each device new to it and refreshes the affected device targets.
// A version names one release of its project (409 for a second); a release without containers
// (which stops every service of the project on its devices) needs `"allow_empty": true`.
import { randomBytes } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import stringify from 'safe-stable-stringify';
import { PostgresAdapter } from 'kysely';
import { ConflictError, NotFoundError, ValidationError } from '../../shared/errors.js';
import { DEPLOYMENT_STATES } from '../deployments/stateMachine.js';
import { inChunks, nowIso, type ServerDb } from '../db/database.js';
import { releaseContainerOf } from '../targets/deviceTargets.js';
import {
  CONTAINER_NAME_MAX,
  CONTAINER_NAME_PATTERN,
  StartupParametersSchema,
  TAG_PATTERN,
  fullyQualifiedName,
  validateReleaseApp,
  type RegistryRecord,
  type ReleaseContainer,
} from '../targets/releaseTarget.js';
import type { ServerApp, ServerContext } from '../app.js';

/** What AutoPi clients send back after a GET: accepted and ignored. */
const ReadOnly = (description: string) => Type.Optional(Type.Unknown({ readOnly: true, description: `read-only (${description}): ignored when sent` }));

const ContainerBody = Type.Object(
  {
    name: Type.String({ pattern: CONTAINER_NAME_PATTERN, maxLength: CONTAINER_NAME_MAX, description: 'the service name, unique in the release' }),
    image: Type.String({ minLength: 1, maxLength: 255, description: 'repository, e.g. "curveball" or "acme/api"; prefixed with the registry host unless it names one' }),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 135, description: 'default "latest"; "sha256:<hex>" pins a digest' })),
    required_tags: Type.Optional(Type.Array(Type.String({ pattern: TAG_PATTERN }), { uniqueItems: true, maxItems: 32, description: 'other tags of the image pulled first' })),
    startup_parameters: Type.Optional(StartupParametersSchema),
    purge_data: Type.Optional(Type.Boolean({ description: 'clear the container data before it starts' })),
    registry: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: "default: the project's default registry" })),
    fully_qualified_name: ReadOnly('deployment-<name>-<release id>'),
  },
  { additionalProperties: false },
);
const ReleaseBody = Type.Object(
  {
    version: Type.String({ minLength: 1, maxLength: 200, description: 'unique in the project' }),
    devices: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { uniqueItems: true, description: "device ids; default: the project's devices" })),
    containers: Type.Array(ContainerBody, { maxItems: 100, description: 'at least one, unless allow_empty' }),
    /** not stored: says that an empty `containers` is meant */
    allow_empty: Type.Optional(Type.Boolean({ description: 'true: a release without containers is meant (it stops and removes every service of the project on its devices)' })),
    remove_containers: Type.Optional(
      Type.Array(Type.String({ pattern: CONTAINER_NAME_PATTERN }), { uniqueItems: true, description: 'containers stopped before the deployment, removed when it succeeds' }),
    ),
    id: ReadOnly('generated'),
    version_hash: ReadOnly('generated'),
    successful_deployments: ReadOnly('from the deployments'),
    created_at: ReadOnly('generated'),
  },
  { additionalProperties: false },
);
const ReleasePatch = Type.Partial(ReleaseBody, { additionalProperties: false });

const Container = Type.Object({
  name: Type.String(),
  image: Type.String(),
  tag: Type.String(),
  required_tags: Type.Array(Type.String()),
  startup_parameters: StartupParametersSchema,
  purge_data: Type.Boolean(),
  registry: Type.Union([Type.Integer(), Type.Null()]),
  fully_qualified_name: Type.String({ readOnly: true }),
});
const Release = Type.Object({
  id: Type.Integer(),
  version: Type.String(),
  version_hash: Type.String({ readOnly: true, pattern: '^[0-9a-f]{8}$' }),
  devices: Type.Array(Type.String()),
  containers: Type.Array(Container),
  remove_containers: Type.Array(Type.String()),
  successful_deployments: Type.Array(Type.String(), { readOnly: true, description: 'devices that deployed this release successfully' }),
  created_at: Type.String({ readOnly: true }),
});
const Deployment = Type.Object({
  device: Type.String(),
  state: Type.Union(
    DEPLOYMENT_STATES.map((s) => Type.Literal(s)),
    {
      description:
        'succeeded: every service ran the settle period without a restart (healthy where it has a healthcheck); failed: `error` says why (a pull, create or start, ' +
        'or a service that exited, restarted or is unhealthy: exit code, restarts, last lines); superseded: the device moved on to a newer release first',
    },
  ),
  error: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
  finished_at: Type.Union([Type.String(), Type.Null()]),
});
const ProjectParams = Type.Object({ project_pk: Type.Integer({ minimum: 1 }) });
const ReleaseParams = Type.Object({ project_pk: Type.Integer({ minimum: 1 }), id: Type.Integer({ minimum: 1 }) });

type ReleaseOut = Static<typeof Release>;
type ContainerIn = Static<typeof ContainerBody>;
interface ProjectRow {
  id: number;
  name: string;
  default_registry: number | null;
}
/** A release as stored, defaults applied. */
interface ReleaseInput {
  version: string;
  devices: string[];
  containers: ReleaseContainer[];
  remove_containers: string[];
}

/** Where version hashes come from (tests replace it to force a collision). */
export const versionHashes = { next: (): string => randomBytes(4).toString('hex') };

export const releaseRoutes = ({ db, targets }: ServerContext) => async (app: ServerApp) => {
  const tags = ['docker'];
  const base = '/docker/projects/:project_pk/releases';

  app.get(`${base}/`, { schema: { tags, params: ProjectParams, response: { 200: Type.Array(Release) } } }, async (req) => {
    await findProject(db, req.params.project_pk);
    const rows = await db.selectFrom('release').selectAll().where('project_id', '=', req.params.project_pk).orderBy('id').execute();
    return entities(db, rows);
  });

  app.post(`${base}/`, { schema: { tags, params: ProjectParams, body: ReleaseBody, response: { 201: Release } } }, async (req, reply) => {
    const project = await findProject(db, req.params.project_pk);
    const body = req.body;
    refuseEmpty(body.containers, body.allow_empty);
    const input: ReleaseInput = {
      version: body.version,
      devices: body.devices ?? (await projectDevices(db, project.id)),
      containers: body.containers.map(containerOf),
      remove_containers: body.remove_containers ?? [],
    };
    await check(db, project, input, 0);
    const id = await withFreshHash(() =>
      db.transaction().execute(async (tx) => {
        await refuseTakenVersion(tx, project.id, input.version, 0);
        const row = await tx
          .insertInto('release')
          .values({
            project_id: project.id,
            version: input.version,
            version_hash: await freeVersionHash(tx),
            remove_containers: JSON.stringify(input.remove_containers),
            created_at: nowIso(),
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        await writeContainers(tx, row.id, input.containers);
        await setDevices(tx, row.id, input.devices, false);
        return row.id;
      }),
    );
    await targets.refresh(input.devices);
    return reply.code(201).send(await find(db, project.id, id));
  });

  app.get(`${base}/active/`, { schema: { tags, params: ProjectParams, response: { 200: Release }, description: 'the newest release of the project' } }, async (req) => {
    await findProject(db, req.params.project_pk);
    const row = await db.selectFrom('release').selectAll().where('project_id', '=', req.params.project_pk).orderBy('id', 'desc').limit(1).executeTakeFirst();
    if (!row) throw new NotFoundError(`project ${req.params.project_pk} has no release`);
    return (await entities(db, [row]))[0]!;
  });

  app.get(`${base}/:id/`, { schema: { tags, params: ReleaseParams, response: { 200: Release } } }, async (req) => find(db, req.params.project_pk, req.params.id));

  /** PUT replaces the release, PATCH the fields it gives; either is checked whole before it is stored. */
  const update = async (projectId: number, id: number, change: (current: ReleaseInput) => Promise<ReleaseInput>): Promise<ReleaseOut> => {
    const project = await findProject(db, projectId);
    const current = await find(db, projectId, id);
    const before: ReleaseInput = {
      version: current.version,
      devices: current.devices,
      containers: current.containers.map(containerOf),
      remove_containers: current.remove_containers,
    };
    const next = await change(before);
    await check(db, project, next, id);
    const contentChanged =
      stringify(before.containers) !== stringify(next.containers) || stringify(before.remove_containers) !== stringify(next.remove_containers);
    await db.transaction().execute(async (tx) => {
      await refuseTakenVersion(tx, projectId, next.version, id);
      await tx.updateTable('release').set({ version: next.version, remove_containers: JSON.stringify(next.remove_containers) }).where('id', '=', id).execute();
      if (contentChanged) await writeContainers(tx, id, next.containers);
      await setDevices(tx, id, next.devices, contentChanged);
    });
    await targets.refresh([...new Set([...before.devices, ...next.devices])]);
    return find(db, projectId, id);
  };
  app.put(`${base}/:id/`, { schema: { tags, params: ReleaseParams, body: ReleaseBody, response: { 200: Release } } }, async (req) => {
    const body = req.body;
    refuseEmpty(body.containers, body.allow_empty);
    return update(req.params.project_pk, req.params.id, async () => ({
      version: body.version,
      devices: body.devices ?? (await projectDevices(db, req.params.project_pk)),
      containers: body.containers.map(containerOf),
      remove_containers: body.remove_containers ?? [],
    }));
  });
  app.patch(`${base}/:id/`, { schema: { tags, params: ReleaseParams, body: ReleasePatch, response: { 200: Release } } }, async (req) => {
    const body = req.body;
    refuseEmpty(body.containers, body.allow_empty);
    return update(req.params.project_pk, req.params.id, async (current) => ({
      version: body.version ?? current.version,
      devices: body.devices ?? current.devices,
      containers: body.containers?.map(containerOf) ?? current.containers,
      remove_containers: body.remove_containers ?? current.remove_containers,
    }));
  });

  app.delete(`${base}/:id/`, { schema: { tags, params: ReleaseParams } }, async (req, reply) => {
    const { devices } = await find(db, req.params.project_pk, req.params.id);
    // its containers, devices and deployments go with it (foreign keys cascade)
    await db.deleteFrom('release').where('id', '=', req.params.id).execute();
    await targets.refresh(devices); // they fall back to the project's previous release, if any
    return reply.code(204).send();
  });

  app.get(`${base}/:id/deployments/`, { schema: { tags, params: ReleaseParams, response: { 200: Type.Array(Deployment) } } }, async (req) => {
    await find(db, req.params.project_pk, req.params.id);
    const rows = await db
      .selectFrom('deployment')
      .select(['device_id', 'state', 'error', 'created_at', 'updated_at', 'finished_at'])
      .where('release_id', '=', req.params.id)
      .orderBy('device_id')
      .execute();
    return rows.map(({ device_id, ...rest }) => ({ device: device_id, ...rest }));
  });
};

const containerOf = (c: ContainerIn | ReleaseOut['containers'][number]): ReleaseContainer => ({
  name: c.name,
  image: c.image,
  tag: c.tag ?? 'latest',
  required_tags: c.required_tags ?? [],
  startup_parameters: c.startup_parameters ?? {},
  purge_data: c.purge_data ?? false,
  registry: c.registry ?? null,
});

async function findProject(db: ServerDb, id: number): Promise<ProjectRow> {
  const row = await db.selectFrom('project').select(['id', 'name', 'default_registry_id']).where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError(`no project ${id}`);
  return { id: row.id, name: row.name, default_registry: row.default_registry_id };
}

async function projectDevices(db: ServerDb, projectId: number): Promise<string[]> {
  const rows = await db.selectFrom('project_device').select('device_id').where('project_id', '=', projectId).orderBy('device_id').execute();
  return rows.map((r) => r.device_id);
}

async function find(db: ServerDb, projectId: number, id: number): Promise<ReleaseOut> {
  const row = await db.selectFrom('release').selectAll().where('id', '=', id).where('project_id', '=', projectId).executeTakeFirst();
  if (!row) throw new NotFoundError(`project ${projectId} has no release ${id}`);
  return (await entities(db, [row]))[0]!;
}

type ReleaseRow = { id: number; version: string; version_hash: string; remove_containers: string; created_at: string };

async function entities(db: ServerDb, rows: ReleaseRow[]): Promise<ReleaseOut[]> {
  if (!rows.length) return [];
  const ids = rows.map((r) => r.id);
  const [containers, devices, succeeded] = await Promise.all([
    db.selectFrom('release_container').selectAll().where('release_id', 'in', ids).orderBy('release_id').orderBy('position').execute(),
    db.selectFrom('release_device').select(['release_id', 'device_id']).where('release_id', 'in', ids).orderBy('device_id').execute(),
    db.selectFrom('deployment').select(['release_id', 'device_id']).where('release_id', 'in', ids).where('state', '=', 'succeeded').orderBy('device_id').execute(),
  ]);
  const by = <T extends { release_id: number }>(list: T[], id: number) => list.filter((x) => x.release_id === id);
  return rows.map((r) => ({
    id: r.id,
    version: r.version,
    version_hash: r.version_hash,
    devices: by(devices, r.id).map((d) => d.device_id),
    containers: by(containers, r.id).map((c) => ({ ...releaseContainerOf(c), fully_qualified_name: fullyQualifiedName(c.name, r.id) })),
    remove_containers: JSON.parse(r.remove_containers) as string[],
    successful_deployments: by(succeeded, r.id).map((d) => d.device_id),
    created_at: r.created_at,
  }));
}

/**
 * References to registries and devices that do not exist are 400s naming the field; then the
 * containers must convert to a valid app (the same conversion devices get), or nothing is stored.
 */
async function check(db: ServerDb, project: ProjectRow, input: ReleaseInput, releaseId: number): Promise<void> {
  const wanted = [...new Set([...input.containers.map((c) => c.registry), project.default_registry].filter((r): r is number => r !== null))];
  const registries = new Map<number, RegistryRecord>();
  if (wanted.length) {
    for (const r of await db.selectFrom('registry').select(['id', 'url', 'username']).where('id', 'in', wanted).execute()) {
      registries.set(r.id, { ...r, password: '' }); // credentials play no part in the check
    }
  }
  input.containers.forEach((c, i) => {
    if (c.registry !== null && !registries.has(c.registry)) throw new ValidationError(`/containers/${i}/registry`, `no registry ${c.registry}`, 'release');
  });
  if (input.devices.length) {
    const known = new Set<string>();
    for (const part of inChunks(input.devices)) for (const d of await db.selectFrom('device').select('id').where('id', 'in', part).execute()) known.add(d.id);
    const index = input.devices.findIndex((d) => !known.has(d));
    if (index >= 0) throw new ValidationError(`/devices/${index}`, `no device ${input.devices[index]}`, 'release');
  }
  validateReleaseApp({ id: releaseId, version_hash: '00000000', project }, input.containers, registries);
}

/** A release without containers stops and removes every service of the project on its devices: only when the request says it means that. */
function refuseEmpty(containers: unknown[] | undefined, allowEmpty: boolean | undefined): void {
  if (containers?.length === 0 && allowEmpty !== true) {
    throw new ValidationError('/containers', 'no containers: this release would stop and remove every service of the project on its devices; send "allow_empty": true if that is meant', 'release');
  }
}

/**
 * Versions are unique in a project (a release is changed with PUT or PATCH, never shadowed by a
 * namesake). On PostgreSQL the project's row is locked, so that two server nodes cannot both
 * create a version; SQLite runs one transaction at a time.
 */
async function refuseTakenVersion(tx: ServerDb, projectId: number, version: string, releaseId: number): Promise<void> {
  if (tx.getExecutor().adapter instanceof PostgresAdapter) await tx.selectFrom('project').select('id').where('id', '=', projectId).forUpdate().execute();
  const taken = await tx.selectFrom('release').select('id').where('project_id', '=', projectId).where('version', '=', version).where('id', '!=', releaseId).executeTakeFirst();
  if (taken) {
    throw new ConflictError(`version: release ${taken.id} of project ${projectId} is version "${version}" already (versions are unique in a project): use another version, or change release ${taken.id} with PUT or PATCH`);
  }
}

async function writeContainers(tx: ServerDb, releaseId: number, containers: ReleaseContainer[]): Promise<void> {
  await tx.deleteFrom('release_container').where('release_id', '=', releaseId).execute();
  if (!containers.length) return;
  await tx
    .insertInto('release_container')
    .values(
      containers.map((c, position) => ({
        release_id: releaseId,
        position,
        name: c.name,
        image: c.image,
        tag: c.tag,
        required_tags: JSON.stringify(c.required_tags),
        startup_parameters: JSON.stringify(c.startup_parameters),
        purge_data: c.purge_data ? 1 : 0,
        registry_id: c.registry,
      })),
    )
    .execute();
}

/**
 * The release's devices become `devices`: a device new to it gets a pending deployment, a device
 * taken off it loses its deployment record; when the release's content changed, the devices that
 * stay must deploy it again (pending).
 */
async function setDevices(tx: ServerDb, releaseId: number, devices: string[], contentChanged: boolean): Promise<void> {
  const before = new Set((await tx.selectFrom('release_device').select('device_id').where('release_id', '=', releaseId).execute()).map((d) => d.device_id));
  const wanted = new Set(devices);
  const added = devices.filter((d) => !before.has(d));
  const removed = [...before].filter((d) => !wanted.has(d));
  const kept = devices.filter((d) => before.has(d));
  const now = nowIso();
  for (const part of inChunks(removed)) {
    await tx.deleteFrom('release_device').where('release_id', '=', releaseId).where('device_id', 'in', part).execute();
    await tx.deleteFrom('deployment').where('release_id', '=', releaseId).where('device_id', 'in', part).execute();
  }
  const pending = { state: 'pending' as const, error: null, updated_at: now, finished_at: null };
  for (const part of inChunks(added)) {
    await tx.insertInto('release_device').values(part.map((device_id) => ({ release_id: releaseId, device_id }))).execute();
    await tx
      .insertInto('deployment')
      .values(part.map((device_id) => ({ release_id: releaseId, device_id, ...pending, created_at: now })))
      .onConflict((oc) => oc.columns(['release_id', 'device_id']).doUpdateSet(pending))
      .execute();
  }
  for (const part of contentChanged ? inChunks(kept) : []) {
    await tx.updateTable('deployment').set(pending).where('release_id', '=', releaseId).where('device_id', 'in', part).where('state', '!=', 'pending').execute();
  }
}

/** A version hash no release has; the unique constraint settles a race with another server node. */
async function freeVersionHash(tx: ServerDb): Promise<string> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const hash = versionHashes.next();
    const taken = await tx.selectFrom('release').select('id').where('version_hash', '=', hash).executeTakeFirst();
    if (!taken) return hash;
  }
  throw new Error('no free version hash after 20 attempts');
}

async function withFreshHash<T>(insert: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await insert();
    } catch (err) {
      const msg = String((err as Error).message);
      if (attempt >= 3 || !/version_hash/.test(msg) || !/unique|duplicate/i.test(msg)) throw err;
    }
  }
}
