// /docker/projects/{project_pk}/releases/: the releases of a project, with AutoPi's paths and shapes.
// What a release means, and the rules on storing one, are the service's (services/releases.ts).
import { Type } from '@sinclair/typebox';
import { DEPLOYMENT_STATES } from '../deployments/stateMachine.js';
import { CONTAINER_NAME_MAX, CONTAINER_NAME_PATTERN, StartupParametersSchema, TAG_PATTERN } from '../targets/releaseSchema.js';
import type { ServerApp, ServerContext } from '../app.js';

export { versionHashes } from '../services/releases.js';

/** What AutoPi clients send back after a GET: accepted and ignored. */
const ReadOnly = (description: string) => Type.Optional(Type.Unknown({ readOnly: true, description: `read-only (${description}): ignored when sent` }));

const ContainerBody = Type.Object(
  {
    name: Type.String({ pattern: CONTAINER_NAME_PATTERN, maxLength: CONTAINER_NAME_MAX, description: 'the service name, unique in the release' }),
    image: Type.String({
      minLength: 1,
      maxLength: 255,
      description: 'repository, e.g. "curveball" or "acme/api"; prefixed with the registry host unless it names one',
    }),
    tag: Type.Optional(Type.String({ minLength: 1, maxLength: 135, description: 'default "latest"; "sha256:<hex>" pins a digest' })),
    required_tags: Type.Optional(
      Type.Array(Type.String({ pattern: TAG_PATTERN }), { uniqueItems: true, maxItems: 32, description: 'other tags of the image pulled first' }),
    ),
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
    allow_empty: Type.Optional(
      Type.Boolean({ description: 'true: a release without containers is meant (it stops and removes every service of the project on its devices)' }),
    ),
    remove_containers: Type.Optional(
      Type.Array(Type.String({ pattern: CONTAINER_NAME_PATTERN }), {
        uniqueItems: true,
        description: 'containers stopped before the deployment, removed when it succeeds',
      }),
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
        'succeeded: every service ran the settle period without a restart (healthy where it has a healthcheck); ' +
        'failed: `error` says why (a pull, create or start, ' +
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

export const releaseRoutes =
  ({ releases }: ServerContext) =>
  async (app: ServerApp) => {
    const tags = ['docker'];
    const base = '/docker/projects/:project_pk/releases';

    app.get(`${base}/`, { schema: { tags, params: ProjectParams, response: { 200: Type.Array(Release) } } }, async (req) =>
      releases.list(req.params.project_pk),
    );
    app.post(`${base}/`, { schema: { tags, params: ProjectParams, body: ReleaseBody, response: { 201: Release } } }, async (req, reply) =>
      reply.code(201).send(await releases.create(req.params.project_pk, req.body)),
    );
    const activeSchema = { tags, params: ProjectParams, response: { 200: Release }, description: 'the newest release of the project' };
    app.get(`${base}/active/`, { schema: activeSchema }, async (req) => releases.active(req.params.project_pk));
    app.get(`${base}/:id/`, { schema: { tags, params: ReleaseParams, response: { 200: Release } } }, async (req) =>
      releases.get(req.params.project_pk, req.params.id),
    );
    app.put(`${base}/:id/`, { schema: { tags, params: ReleaseParams, body: ReleaseBody, response: { 200: Release } } }, async (req) =>
      releases.replace(req.params.project_pk, req.params.id, req.body),
    );
    app.patch(`${base}/:id/`, { schema: { tags, params: ReleaseParams, body: ReleasePatch, response: { 200: Release } } }, async (req) =>
      releases.patch(req.params.project_pk, req.params.id, req.body),
    );
    app.delete(`${base}/:id/`, { schema: { tags, params: ReleaseParams } }, async (req, reply) => {
      await releases.remove(req.params.project_pk, req.params.id);
      return reply.code(204).send();
    });
    app.get(`${base}/:id/deployments/`, { schema: { tags, params: ReleaseParams, response: { 200: Type.Array(Deployment) } } }, async (req) =>
      releases.deployments(req.params.project_pk, req.params.id),
    );
  };
