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
  { additionalProperties: false, examples: [{ name: 'sensors', device_type: 'esp32', config: { SAMPLE_RATE: '10' } }] },
);
const AppPatch = Type.Partial(AppBody, { additionalProperties: false, examples: [{ config: { SAMPLE_RATE: '20' } }] });
const appExample = {
  id: 1,
  project: 1,
  name: 'sensors',
  device_type: 'esp32',
  config: { SAMPLE_RATE: '10' },
  commit: null,
  created_at: '2024-05-01T10:00:00.000Z',
};
const DependentApp = Type.Object(
  {
    id: Type.Integer(),
    project: Type.Integer({ description: 'the gateway project' }),
    name: Type.String(),
    device_type: Type.String(),
    config: Type.Record(Type.String(), Type.String()),
    commit: Type.Union([Type.String(), Type.Null()], { description: "the newest release's commit: what its devices run unless pinned" }),
    created_at: Type.String(),
  },
  { examples: [appExample] },
);
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
  { additionalProperties: false, examples: [{ image: 'acme/sensor-fw', tag: '1.0' }] },
);
const releaseExample = {
  id: 1,
  app: 1,
  image: 'acme/sensor-fw',
  tag: '1.0',
  registry: 1,
  commit: 'sha256:3f1c1e4a9b0d6c2e8f7a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e',
  digest: true,
  version_hash: '5b135b41',
  created_at: '2024-05-01T10:05:00.000Z',
};
const DependentRelease = Type.Object(
  {
    id: Type.Integer(),
    app: Type.Integer(),
    image: Type.String(),
    tag: Type.String(),
    registry: Type.Union([Type.Integer(), Type.Null()]),
    commit: Type.String({ description: 'the image digest when the registry gave it, else the version hash' }),
    digest: Type.Boolean({ description: 'whether `commit` is the image digest' }),
    version_hash: Type.String(),
    created_at: Type.String(),
  },
  { examples: [releaseExample] },
);
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
          response: { 200: Type.Array(DependentApp, { examples: [[appExample]] }) },
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
          response: { 200: Type.Array(DependentRelease, { examples: [[releaseExample]] }) },
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
