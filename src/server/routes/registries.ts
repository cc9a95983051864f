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
  { additionalProperties: false, examples: [{ url: 'registry.example.com', username: 'me', password: 's3cret' }] },
);
const RegistryPatch = Type.Partial(RegistryBody, { additionalProperties: false, examples: [{ password: 'n3w-s3cret' }] });
/** PUT replaces the entity; the password may be left out to keep the stored one (it is never shown). */
const RegistryPut = Type.Composite([Type.Omit(RegistryBody, ['password']), Type.Partial(Type.Pick(RegistryBody, ['password']))], {
  additionalProperties: false,
  examples: [{ url: 'registry.example.com', username: 'me' }],
});
const registryExample = { id: 1, url: 'registry.example.com', username: 'me' };
const Registry = Type.Object({ id: Type.Integer(), url: Type.String(), username: Type.String() }, { examples: [registryExample] });
const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });

export const registryRoutes =
  ({ registries }: ServerContext) =>
  async (app: ServerApp) => {
    const tags = ['docker'];

    app.get(
      '/docker/registries/',
      {
        schema: {
          tags,
          summary: 'List registries',
          description: 'The registries devices pull from; passwords are never returned.',
          response: { 200: Type.Array(Registry, { examples: [[registryExample]] }) },
        },
      },
      async () => registries.list(),
    );
    app.post(
      '/docker/registries/',
      {
        schema: {
          tags,
          summary: 'Add a registry',
          description:
            'Credentials devices use to pull the images of releases that name this registry. The url is checked (400 on `/url`); the password is ' +
            'sealed at rest and never returned.',
          body: RegistryBody,
          response: { 201: Registry },
        },
      },
      async (req, reply) => reply.code(201).send(await registries.create(req.body)),
    );
    app.get(
      '/docker/registries/:id/',
      {
        schema: {
          tags,
          summary: 'Get a registry',
          description: 'One registry, without its password. Unknown id: 404.',
          params: IdParams,
          response: { 200: Registry },
        },
      },
      async (req) => registries.get(req.params.id),
    );
    app.put(
      '/docker/registries/:id/',
      {
        schema: {
          tags,
          summary: 'Replace a registry',
          description: 'Replaces url and username; leave out the password to keep the stored one. The devices whose releases use it get new targets.',
          params: IdParams,
          body: RegistryPut,
          response: { 200: Registry },
        },
      },
      async (req) => registries.update(req.params.id, req.body),
    );
    app.patch(
      '/docker/registries/:id/',
      {
        schema: {
          tags,
          summary: 'Change a registry',
          description: 'Changes the fields given (e.g. a new password); the devices whose releases use it get new targets.',
          params: IdParams,
          body: RegistryPatch,
          response: { 200: Registry },
        },
      },
      async (req) => registries.update(req.params.id, req.body),
    );
    app.delete(
      '/docker/registries/:id/',
      {
        schema: {
          tags,
          summary: 'Remove a registry',
          description: 'Removes the registry (204); 409 while a project has it as its default or a release uses it, naming which. Unknown id: 404.',
          params: IdParams,
        },
      },
      async (req, reply) => {
        await registries.remove(req.params.id);
        return reply.code(204).send();
      },
    );
  };
