// Dependent apps of a gateway project and their releases (services/dependentApps.ts):
// /docker/projects/{id}/dependent-apps/, /docker/dependent-apps/{id}, /docker/dependent-apps/{id}/releases/.
import { Type } from '@sinclair/typebox';
import type { ServerApp, ServerContext } from '../app.js';

const StrMap = Type.Record(Type.String({ minLength: 1, maxLength: 200 }), Type.String({ maxLength: 10_000 }), { maxProperties: 500 });
const AppBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, description: 'unique in the project' }),
    device_type: Type.String({ minLength: 1, maxLength: 100, description: 'of its devices, e.g. "esp32"' }),
    config: Type.Optional(StrMap),
  },
  { additionalProperties: false },
);
const AppPatch = Type.Partial(AppBody, { additionalProperties: false });
const DependentApp = Type.Object({
  id: Type.Integer(),
  project: Type.Integer({ description: 'the gateway project' }),
  name: Type.String(),
  device_type: Type.String(),
  config: Type.Record(Type.String(), Type.String()),
  commit: Type.Union([Type.String(), Type.Null()], { description: "the newest release's commit: what its devices run unless pinned" }),
  created_at: Type.String(),
});
const ReleaseBody = Type.Object(
  {
    image: Type.String({
      minLength: 1,
      maxLength: 255,
      description: 'repository, as a container of a release names it; prefixed with the registry host unless it names one',
    }),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 135, description: 'default "latest"; "sha256:<hex>" pins a digest' })),
    registry: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()], { description: "default: the project's default registry" })),
  },
  { additionalProperties: false },
);
const DependentRelease = Type.Object({
  id: Type.Integer(),
  app: Type.Integer(),
  image: Type.String(),
  tag: Type.String(),
  registry: Type.Union([Type.Integer(), Type.Null()]),
  commit: Type.String({ description: 'the image digest when the registry gave it, else the version hash' }),
  digest: Type.Boolean({ description: 'whether `commit` is the image digest' }),
  version_hash: Type.String(),
  created_at: Type.String(),
});
const ProjectParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });
const AppParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });

export const dependentAppRoutes =
  ({ dependentApps: apps }: ServerContext) =>
  async (app: ServerApp) => {
    const tags = ['dependent apps'];
    app.get(
      '/docker/projects/:id/dependent-apps/',
      {
        schema: {
          tags,
          summary: 'List the dependent apps of a project',
          description: 'The dependent apps of a gateway project, oldest first, each with its target commit.',
          params: ProjectParams,
          response: { 200: Type.Array(DependentApp) },
        },
      },
      async (req) => apps.list(req.params.id),
    );
    app.post(
      '/docker/projects/:id/dependent-apps/',
      {
        schema: {
          tags,
          summary: 'Create a dependent app',
          description:
            "An app of devices that cannot run the agent (microcontrollers), managed by the project's gateway devices: they get it in their " +
            'target with its newest release. 409 for a name the project has already.',
          params: ProjectParams,
          body: AppBody,
          response: { 201: DependentApp },
        },
      },
      async (req, reply) => reply.code(201).send(await apps.create(req.params.id, req.body)),
    );
    app.get(
      '/docker/dependent-apps/:id',
      { schema: { tags, summary: 'Get a dependent app', description: 'The app and its target commit.', params: AppParams, response: { 200: DependentApp } } },
      async (req) => apps.get(req.params.id),
    );
    app.patch(
      '/docker/dependent-apps/:id',
      {
        schema: {
          tags,
          summary: 'Change a dependent app',
          description: "Its name, device type or config; the project's gateways get the change at once.",
          params: AppParams,
          body: AppPatch,
          response: { 200: DependentApp },
        },
      },
      async (req) => apps.patch(req.params.id, req.body),
    );
    app.delete(
      '/docker/dependent-apps/:id',
      {
        schema: {
          tags,
          summary: 'Delete a dependent app',
          description: 'The app and its releases. Refused (409) while it has devices: delete them first.',
          params: AppParams,
        },
      },
      async (req, reply) => {
        await apps.remove(req.params.id);
        return reply.code(204).send();
      },
    );
    app.get(
      '/docker/dependent-apps/:id/releases/',
      {
        schema: {
          tags,
          summary: 'List the releases of a dependent app',
          description: 'Oldest first; the newest is the target commit of its devices that are not pinned.',
          params: AppParams,
          response: { 200: Type.Array(DependentRelease) },
        },
      },
      async (req) => apps.releases(req.params.id),
    );
    app.post(
      '/docker/dependent-apps/:id/releases/',
      {
        schema: {
          tags,
          summary: 'Release a dependent app',
          description:
            "An image whose `/assets` the gateways extract for their devices (it is never run), named as a container of a release names it (the registry's " +
            'host prefixes it). Its commit is the image digest when the registry gives it, else a version hash; a digest the app has already is a 409. ' +
            "It becomes the target commit of the app's devices that are not pinned.",
          params: AppParams,
          body: ReleaseBody,
          response: { 201: DependentRelease },
        },
      },
      async (req, reply) => reply.code(201).send(await apps.createRelease(req.params.id, req.body)),
    );
  };
