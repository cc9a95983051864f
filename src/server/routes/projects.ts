// /docker/projects/: a project groups releases and the devices that run them.
import { Type, type Static } from '@sinclair/typebox';
import { NotFoundError, ValidationError } from '../../shared/errors.js';
import { inChunks, nowIso, type ServerDb } from '../db/database.js';
import type { ServerApp, ServerContext } from '../app.js';

const ProjectBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.Optional(Type.String({ maxLength: 10_000 })),
    default_registry: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    devices: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { uniqueItems: true })),
  },
  { additionalProperties: false },
);
const ProjectPatch = Type.Partial(ProjectBody, { additionalProperties: false });
const Project = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Type.String(),
  default_registry: Type.Union([Type.Integer(), Type.Null()]),
  devices: Type.Array(Type.String()),
});
const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });
type ProjectOut = Static<typeof Project>;

export const projectRoutes = ({ db, targets }: ServerContext) => async (app: ServerApp) => {
  const tags = ['docker'];

  app.get('/docker/projects/', { schema: { tags, response: { 200: Type.Array(Project) } } }, async () => {
    const rows = await db.selectFrom('project').selectAll().orderBy('id').execute();
    return Promise.all(rows.map((r) => withDevices(db, r)));
  });
  app.post('/docker/projects/', { schema: { tags, body: ProjectBody, response: { 201: Project } } }, async (req, reply) => {
    const body = req.body;
    await checkReferences(db, body);
    const id = await db.transaction().execute(async (tx) => {
      const row = await tx
        .insertInto('project')
        .values({ name: body.name, description: body.description ?? '', default_registry_id: body.default_registry ?? null, created_at: nowIso() })
        .returning('id')
        .executeTakeFirstOrThrow();
      await setDevices(tx, row.id, body.devices ?? []);
      return row.id;
    });
    return reply.code(201).send(await find(db, id));
  });
  app.get('/docker/projects/:id/', { schema: { tags, params: IdParams, response: { 200: Project } } }, async (req) => find(db, req.params.id));
  const update = async (id: number, body: Static<typeof ProjectPatch>): Promise<ProjectOut> => {
    await find(db, id);
    await checkReferences(db, body);
    await db.transaction().execute(async (tx) => {
      const set = {
        ...(body.name !== undefined ? { name: body.name } : {}),
        ...(body.description !== undefined ? { description: body.description } : {}),
        ...(body.default_registry !== undefined ? { default_registry_id: body.default_registry } : {}),
      };
      if (Object.keys(set).length) await tx.updateTable('project').set(set).where('id', '=', id).execute();
      if (body.devices) await setDevices(tx, id, body.devices);
    });
    await targets.refresh(); // the app's name or default registry may be in device targets
    return find(db, id);
  };
  app.put('/docker/projects/:id/', { schema: { tags, params: IdParams, body: ProjectBody, response: { 200: Project } } }, async (req) =>
    update(req.params.id, { description: '', default_registry: null, devices: [], ...req.body }),
  );
  app.patch('/docker/projects/:id/', { schema: { tags, params: IdParams, body: ProjectPatch, response: { 200: Project } } }, async (req) => update(req.params.id, req.body));
  app.delete('/docker/projects/:id/', { schema: { tags, params: IdParams } }, async (req, reply) => {
    await find(db, req.params.id);
    await db.transaction().execute(async (tx) => {
      await tx.deleteFrom('project_device').where('project_id', '=', req.params.id).execute();
      await tx.deleteFrom('project').where('id', '=', req.params.id).execute();
    });
    await targets.refresh(); // its devices stop running its release
    return reply.code(204).send();
  });
};

async function find(db: ServerDb, id: number): Promise<ProjectOut> {
  const row = await db.selectFrom('project').selectAll().where('id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError(`no project ${id}`);
  return withDevices(db, row);
}

async function withDevices(db: ServerDb, row: { id: number; name: string; description: string; default_registry_id: number | null }): Promise<ProjectOut> {
  const devices = await db.selectFrom('project_device').select('device_id').where('project_id', '=', row.id).orderBy('device_id').execute();
  return { id: row.id, name: row.name, description: row.description, default_registry: row.default_registry_id, devices: devices.map((d) => d.device_id) };
}

/** A registry or device that does not exist is the caller's mistake: 400 naming the field. */
async function checkReferences(db: ServerDb, body: Static<typeof ProjectPatch>): Promise<void> {
  if (body.default_registry != null) {
    const found = await db.selectFrom('registry').select('id').where('id', '=', body.default_registry).executeTakeFirst();
    if (!found) throw new ValidationError('/default_registry', `no registry ${body.default_registry}`, 'project');
  }
  if (body.devices?.length) {
    const known = new Set<string>();
    for (const part of inChunks(body.devices)) for (const d of await db.selectFrom('device').select('id').where('id', 'in', part).execute()) known.add(d.id);
    const index = body.devices.findIndex((d) => !known.has(d));
    if (index >= 0) throw new ValidationError(`/devices/${index}`, `no device ${body.devices[index]}`, 'project');
  }
}

async function setDevices(db: ServerDb, projectId: number, devices: string[]): Promise<void> {
  await db.deleteFrom('project_device').where('project_id', '=', projectId).execute();
  for (const part of inChunks(devices)) await db.insertInto('project_device').values(part.map((device_id) => ({ project_id: projectId, device_id }))).execute();
}
