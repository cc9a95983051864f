// /docker/registries/: credentials devices use to pull images. The password is write-only: never
// returned, never logged, sealed at rest with the server key (and in the devices' stored targets).
// A url is checked as the device targets use it before anything is stored.
import { Type, type Static } from '@sinclair/typebox';
import { ConflictError, NotFoundError, ValidationError } from '../../shared/errors.js';
import { nowIso } from '../db/database.js';
import { registryHost } from '../targets/releaseTarget.js';
import type { ServerApp, ServerContext } from '../app.js';

const RegistryBody = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2048, description: 'registry host[:port], optionally with a scheme' }),
    username: Type.String({ maxLength: 512 }),
    password: Type.String({ maxLength: 4096, writeOnly: true }),
  },
  { additionalProperties: false },
);
const RegistryPatch = Type.Partial(RegistryBody, { additionalProperties: false });
const Registry = Type.Object({ id: Type.Integer(), url: Type.String(), username: Type.String() });
const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });
type RegistryRow = Static<typeof Registry>;

/** A url the device targets could not use (releaseTarget.ts) is refused; it is not echoed: it may hold credentials. */
function checkUrl(url: string | undefined): void {
  if (url !== undefined && !registryHost(url)) {
    throw new ValidationError('/url', 'not a registry address: host[:port][/namespace], optionally with a scheme (https://registry.example.com:5000)', 'registry');
  }
}

export const registryRoutes = ({ db, secrets, targets }: ServerContext) => async (app: ServerApp) => {
  const columns = ['id', 'url', 'username'] as const;
  const find = async (id: number): Promise<RegistryRow> => {
    const row = await db.selectFrom('registry').select(columns).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError(`no registry ${id}`);
    return row;
  };
  const update = async (id: number, body: Static<typeof RegistryPatch>): Promise<RegistryRow> => {
    checkUrl(body.url);
    await find(id);
    const { password, ...plain } = body;
    if (Object.keys(body).length) {
      await db.updateTable('registry').set({ ...plain, ...(password !== undefined ? { password_sealed: secrets.seal(password) } : {}) }).where('id', '=', id).execute();
      await targets.refresh(); // devices pulling through it get the new address or credentials
    }
    return find(id);
  };
  const tags = ['docker'];

  app.get('/docker/registries/', { schema: { tags, response: { 200: Type.Array(Registry) } } }, async () =>
    db.selectFrom('registry').select(columns).orderBy('id').execute(),
  );
  app.post('/docker/registries/', { schema: { tags, body: RegistryBody, response: { 201: Registry } } }, async (req, reply) => {
    checkUrl(req.body.url);
    const { password, ...plain } = req.body;
    const row = await db.insertInto('registry').values({ ...plain, password_sealed: secrets.seal(password), created_at: nowIso() }).returning(columns).executeTakeFirstOrThrow();
    return reply.code(201).send(row);
  });
  app.get('/docker/registries/:id/', { schema: { tags, params: IdParams, response: { 200: Registry } } }, async (req) => find(req.params.id));
  // PUT replaces the entity; the password may be left out to keep the stored one (it is never shown)
  app.put('/docker/registries/:id/', { schema: { tags, params: IdParams, body: Type.Composite([Type.Omit(RegistryBody, ['password']), Type.Partial(Type.Pick(RegistryBody, ['password']))], { additionalProperties: false }), response: { 200: Registry } } }, async (req) =>
    update(req.params.id, req.body),
  );
  app.patch('/docker/registries/:id/', { schema: { tags, params: IdParams, body: RegistryPatch, response: { 200: Registry } } }, async (req) => update(req.params.id, req.body));
  app.delete('/docker/registries/:id/', { schema: { tags, params: IdParams } }, async (req, reply) => {
    await find(req.params.id);
    const user = await db.selectFrom('project').select(['id', 'name']).where('default_registry_id', '=', req.params.id).executeTakeFirst();
    if (user) throw new ConflictError(`registry ${req.params.id} is the default registry of project ${user.id} (${user.name})`);
    const container = await db.selectFrom('release_container').select(['release_id', 'name']).where('registry_id', '=', req.params.id).executeTakeFirst();
    if (container) throw new ConflictError(`registry ${req.params.id} is used by container ${container.name} of release ${container.release_id}`);
    await db.deleteFrom('registry').where('id', '=', req.params.id).execute();
    return reply.code(204).send();
  });
};
