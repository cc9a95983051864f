// /docker/projects/{project_pk}/releases/: the releases of a project, with AutoPi's paths and shapes.
// What a release means, and the rules on storing one, are the service's (services/releases.ts).
import { Type } from '@sinclair/typebox';
import { DEPLOYMENT_STATES } from '../deployments/stateMachine.js';
import { COMPOSE_MAX_BYTES } from '../releases/compose.js';
import { CONTAINER_NAME_MAX, CONTAINER_NAME_PATTERN, StartupParametersSchema, TAG_PATTERN } from '../targets/releaseSchema.js';
import type { ServerApp, ServerContext } from '../app.js';

export { versionHashes } from '../services/releaseWrites.js';

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
    containers: Type.Optional(Type.Array(ContainerBody, { maxItems: 100, description: 'at least one, unless allow_empty; or give compose instead' })),
    compose: Type.Optional(
      Type.String({
        maxLength: COMPOSE_MAX_BYTES,
        description:
          'instead of containers: a docker-compose.yml (Compose Specification). Each service becomes a container: image, command, entrypoint, environment, ' +
          'env_file, ports, volumes (host paths and declared named volumes), networks (default only), network_mode, restart, labels, depends_on ' +
          '(service_started), healthcheck, privileged, devices, cap_add, cap_drop, working_dir, user, mem_limit, stop_signal, stop_grace_period; x-* keys ' +
          'are ignored. Any other key is refused (400 naming it, e.g. services.web.build), as is a $VAR the server cannot interpolate ($$ is a literal $).',
        examples: [
          'services:\n  web:\n    image: bosun-test/app:v1\n    command: ["sh", "-c", "exec httpd -f -p 8080"]\n' +
            '    ports: ["127.0.0.1:8080:8080"]\n    restart: always\n',
        ],
      }),
    ),
    env_files: Type.Optional(
      Type.Record(Type.String({ minLength: 1, maxLength: 1024 }), Type.String({ maxLength: 64 * 1024 }), {
        description: 'with compose: the content of each env_file the compose file names, keyed by the path as it is written there',
        examples: [{ './web.env': 'GREETING=hello\n' }],
      }),
    ),
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
  {
    additionalProperties: false,
    examples: [
      {
        version: '1.0.0',
        containers: [
          {
            name: 'web',
            image: 'acme/web',
            tag: '1.0',
            startup_parameters: { environment: ['GREETING=hello'], port_bindings: { '80/tcp': 8080 }, restart_policy: 'always' },
          },
        ],
      },
    ],
  },
);
const ReleasePatch = Type.Partial(ReleaseBody, { additionalProperties: false, examples: [{ remove_containers: ['factory-app'] }] });
const releaseExample = {
  id: 1,
  version: '1.0.0',
  version_hash: '20b9eecf',
  devices: ['5d2b9c1e-8f4a-4c3e-9b7d-2a1f0e6c4b3a'],
  containers: [
    {
      name: 'web',
      image: 'acme/web',
      tag: '1.0',
      required_tags: [],
      startup_parameters: { environment: ['GREETING=hello'], port_bindings: { '80/tcp': 8080 }, restart_policy: 'always' },
      purge_data: false,
      registry: null,
      fully_qualified_name: 'deployment-web-1',
    },
  ],
  remove_containers: [],
  successful_deployments: ['5d2b9c1e-8f4a-4c3e-9b7d-2a1f0e6c4b3a'],
  created_at: '2024-05-01T10:00:00.000Z',
};
const deploymentExample = {
  device: '5d2b9c1e-8f4a-4c3e-9b7d-2a1f0e6c4b3a',
  state: 'failed',
  error: 'web: exited with code 1, restarted 3 times; last lines:\nfatal: no config',
  created_at: '2024-05-01T10:00:00.000Z',
  updated_at: '2024-05-01T10:01:10.000Z',
  finished_at: '2024-05-01T10:01:10.000Z',
};

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
const Release = Type.Object(
  {
    id: Type.Integer(),
    version: Type.String(),
    version_hash: Type.String({ readOnly: true, pattern: '^[0-9a-f]{8}$' }),
    devices: Type.Array(Type.String()),
    containers: Type.Array(Container),
    remove_containers: Type.Array(Type.String()),
    successful_deployments: Type.Array(Type.String(), { readOnly: true, description: 'devices that deployed this release successfully' }),
    created_at: Type.String({ readOnly: true }),
  },
  { examples: [releaseExample] },
);
const Deployment = Type.Object(
  {
    device: Type.String(),
    state: Type.Union(
      DEPLOYMENT_STATES.map((s) => Type.Literal(s)),
      {
        description:
          'succeeded: every service ran the settle period without a restart (healthy where it has a healthcheck); ' +
          'failed: `error` says why (a pull, create or start, ' +
          'or a service that exited, restarted or is unhealthy: exit code, restarts, last lines); ' +
          "superseded: a newer release became the device's target first",
      },
    ),
    error: Type.Union([Type.String(), Type.Null()]),
    created_at: Type.String(),
    updated_at: Type.String(),
    finished_at: Type.Union([Type.String(), Type.Null()]),
  },
  { examples: [deploymentExample] },
);
const ProjectParams = Type.Object({ project_pk: Type.Integer({ minimum: 1 }) });
const ReleaseParams = Type.Object({ project_pk: Type.Integer({ minimum: 1 }), id: Type.Integer({ minimum: 1 }) });

export const releaseRoutes =
  ({ releases }: ServerContext) =>
  async (app: ServerApp) => {
    const tags = ['docker'];
    const base = '/docker/projects/:project_pk/releases';

    app.get(
      `${base}/`,
      {
        schema: {
          tags,
          summary: 'List releases',
          description: "The project's releases, oldest first.",
          params: ProjectParams,
          response: { 200: Type.Array(Release, { examples: [[releaseExample]] }) },
        },
      },
      async (req) => releases.list(req.params.project_pk),
    );
    app.post(
      `${base}/`,
      {
        schema: {
          tags,
          summary: 'Create a release',
          description:
            "The containers every device of the release runs (`devices`, default: the project's): each device runs the newest release that lists " +
            'it, so this deploys it. ' +
            'Validated as devices get it: 400 names the field (e.g. `/containers/0/startup_parameters/port_bindings`); a taken version: 409. ' +
            'Progress per device: `…/releases/{id}/deployments/`.',
          params: ProjectParams,
          body: ReleaseBody,
          response: { 201: Release },
        },
      },
      async (req, reply) => reply.code(201).send(await releases.create(req.params.project_pk, req.body)),
    );
    const activeSchema = {
      tags,
      summary: 'Get the active release',
      description: 'The newest release of the project (what a device that joins it gets). None yet: 404.',
      params: ProjectParams,
      response: { 200: Release },
    };
    app.get(`${base}/active/`, { schema: activeSchema }, async (req) => releases.active(req.params.project_pk));
    app.get(
      `${base}/:id/`,
      {
        schema: {
          tags,
          summary: 'Get a release',
          description: 'One release of the project. Unknown id: 404.',
          params: ReleaseParams,
          response: { 200: Release },
        },
      },
      async (req) => releases.get(req.params.project_pk, req.params.id),
    );
    app.put(
      `${base}/:id/`,
      {
        schema: {
          tags,
          summary: 'Replace a release',
          description: 'Replaces the release (a field left out takes its default); its devices get the new target.',
          params: ReleaseParams,
          body: ReleaseBody,
          response: { 200: Release },
        },
      },
      async (req) => releases.replace(req.params.project_pk, req.params.id, req.body),
    );
    app.patch(
      `${base}/:id/`,
      {
        schema: {
          tags,
          summary: 'Change a release',
          description: 'Changes the fields given, e.g. `devices`; the devices affected get new targets.',
          params: ReleaseParams,
          body: ReleasePatch,
          response: { 200: Release },
        },
      },
      async (req) => releases.patch(req.params.project_pk, req.params.id, req.body),
    );
    app.delete(
      `${base}/:id/`,
      {
        schema: {
          tags,
          summary: 'Remove a release',
          description: "Removes the release (204); its devices move to the project's newest release that lists them, or run none of its apps.",
          params: ReleaseParams,
        },
      },
      async (req, reply) => {
        await releases.remove(req.params.project_pk, req.params.id);
        return reply.code(204).send();
      },
    );
    app.get(
      `${base}/:id/deployments/`,
      {
        schema: {
          tags,
          summary: "List a release's deployments",
          description:
            'One record per device: pending, downloading, applying, succeeded, failed (with `error`: why, per service) or superseded; ' +
            '`finished_at` once it ended.',
          params: ReleaseParams,
          response: { 200: Type.Array(Deployment, { examples: [[deploymentExample]] }) },
        },
      },
      async (req) => releases.deployments(req.params.project_pk, req.params.id),
    );
  };
