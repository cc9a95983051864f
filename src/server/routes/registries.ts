// /docker/registries/: credentials devices use to pull images (services/registries.ts). The
// password is write-only: never returned.
import { Type } from '@sinclair/typebox';
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
/** PUT replaces the entity; the password may be left out to keep the stored one (it is never shown). */
const RegistryPut = Type.Composite([Type.Omit(RegistryBody, ['password']), Type.Partial(Type.Pick(RegistryBody, ['password']))], {
  additionalProperties: false,
});
const Registry = Type.Object({ id: Type.Integer(), url: Type.String(), username: Type.String() });
const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });

export const registryRoutes =
  ({ registries }: ServerContext) =>
  async (app: ServerApp) => {
    const tags = ['docker'];

    app.get('/docker/registries/', { schema: { tags, response: { 200: Type.Array(Registry) } } }, async () => registries.list());
    app.post('/docker/registries/', { schema: { tags, body: RegistryBody, response: { 201: Registry } } }, async (req, reply) =>
      reply.code(201).send(await registries.create(req.body)),
    );
    app.get('/docker/registries/:id/', { schema: { tags, params: IdParams, response: { 200: Registry } } }, async (req) => registries.get(req.params.id));
    app.put('/docker/registries/:id/', { schema: { tags, params: IdParams, body: RegistryPut, response: { 200: Registry } } }, async (req) =>
      registries.update(req.params.id, req.body),
    );
    app.patch('/docker/registries/:id/', { schema: { tags, params: IdParams, body: RegistryPatch, response: { 200: Registry } } }, async (req) =>
      registries.update(req.params.id, req.body),
    );
    app.delete('/docker/registries/:id/', { schema: { tags, params: IdParams } }, async (req, reply) => {
      await registries.remove(req.params.id);
      return reply.code(204).send();
    });
  };
