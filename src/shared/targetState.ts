// The device target state: what the agent converges the engine onto.
// One schema for the agent (local file, device API) and the server (which produces it).
import { Type, type Static } from '@sinclair/typebox';
import { DependentTargetSchema } from './dependents.js';

const Str = (opts: Record<string, unknown> = {}) => Type.String({ minLength: 1, ...opts });
const StrMap = Type.Record(Type.String({ minLength: 1 }), Type.String());

export const UPDATE_STRATEGIES = ['download-then-kill', 'kill-then-download', 'delete-then-download', 'hand-over'] as const;
export type UpdateStrategy = (typeof UPDATE_STRATEGIES)[number];

// Docker duration strings ("30s", "1m30s") or milliseconds.
const Duration = Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: '^(\\d+(ms|s|m|h))+$' })]);

export const HealthcheckSchema = Type.Object(
  {
    test: Type.Union([Type.Array(Type.String(), { minItems: 1 }), Type.String({ minLength: 1 })]),
    interval: Type.Optional(Duration),
    timeout: Type.Optional(Duration),
    retries: Type.Optional(Type.Integer({ minimum: 0 })),
    start_period: Type.Optional(Duration),
  },
  { additionalProperties: false },
);

export const ServiceSchema = Type.Object(
  {
    image: Str({ pattern: '^[^\\s]+$', description: 'image reference, by tag or digest' }),
    registry: Type.Optional(Str({ description: 'key into the target registries; default: by image host' })),
    command: Type.Optional(Type.Union([Type.Array(Type.String()), Type.String(), Type.Null()])),
    entrypoint: Type.Optional(Type.Union([Type.Array(Type.String()), Type.String(), Type.Null()])),
    environment: Type.Optional(StrMap),
    labels: Type.Optional(StrMap),
    working_dir: Type.Optional(Str()),
    user: Type.Optional(Str()),
    volumes: Type.Optional(Type.Array(Str({ pattern: '^[^:]+:/[^:]*(:(ro|rw))?$', description: 'name:/path[:ro] or /host:/path[:ro]' }))),
    ports: Type.Optional(
      Type.Array(
        Str({
          pattern: '^((([0-9.]+|\\[[0-9a-fA-F:]+\\]):\\d*:)|(\\d+:))?\\d+(/(tcp|udp|sctp))?$',
          description: '[ip:[hostPort]:|hostPort:]containerPort[/proto]',
        }),
      ),
    ),
    network_mode: Type.Optional(Str({ pattern: '^(bridge|host|none|service:[a-zA-Z0-9][a-zA-Z0-9_.-]*)$' })),
    networks: Type.Optional(Type.Array(Str(), { uniqueItems: true })),
    restart: Type.Optional(Str({ pattern: '^(no|always|unless-stopped|on-failure(:\\d+)?)$' })),
    privileged: Type.Optional(Type.Boolean()),
    cap_add: Type.Optional(Type.Array(Str())),
    cap_drop: Type.Optional(Type.Array(Str())),
    devices: Type.Optional(Type.Array(Str({ pattern: '^/[^:]+(:/[^:]+)?(:[rwm]+)?$' }))),
    mem_limit: Type.Optional(Type.Union([Type.Integer({ minimum: 6291456 }), Str({ pattern: '^\\d+[bkmg]?$' })])),
    cpus: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1024 })),
    healthcheck: Type.Optional(HealthcheckSchema),
    stop_signal: Type.Optional(Str({ pattern: '^(SIG)?[A-Z0-9]+$' })),
    stop_grace_period: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: 'seconds' })),
    running: Type.Optional(Type.Boolean()),
    update_strategy: Type.Optional(Type.Union(UPDATE_STRATEGIES.map((s) => Type.Literal(s)))),
    handover_timeout: Type.Optional(Type.Integer({ minimum: 0, description: 'milliseconds' })),
    required_tags: Type.Optional(Type.Array(Str({ pattern: '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$' }))),
    depends_on: Type.Optional(Type.Array(Str(), { uniqueItems: true })),
    purge_data: Type.Optional(
      Type.Boolean({ description: "empty the service's volumes and host-folder binds once per release, before its first container of that release starts" }),
    ),
  },
  { additionalProperties: false },
);

export const VolumeSchema = Type.Object(
  {
    driver: Type.Optional(Str()),
    driver_opts: Type.Optional(StrMap),
    labels: Type.Optional(StrMap),
  },
  { additionalProperties: false },
);

export const NetworkSchema = Type.Object(
  {
    driver: Type.Optional(Str()),
    internal: Type.Optional(Type.Boolean()),
    labels: Type.Optional(StrMap),
    ipam: Type.Optional(
      Type.Object({
        config: Type.Optional(Type.Array(Type.Object({ subnet: Type.Optional(Str()), gateway: Type.Optional(Str()) }))),
      }),
    ),
  },
  { additionalProperties: false },
);

const ServiceName = '^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$';

export const ReleaseSchema = Type.Object(
  {
    id: Type.Integer({ minimum: 0 }),
    commit: Str({ pattern: '^[A-Za-z0-9_.-]+$' }),
    services: Type.Record(Type.String({ pattern: ServiceName }), ServiceSchema),
    volumes: Type.Optional(Type.Record(Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$' }), VolumeSchema)),
    networks: Type.Optional(Type.Record(Type.String({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$' }), NetworkSchema)),
    remove_containers: Type.Optional(
      Type.Array(Str({ pattern: '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$' }), {
        uniqueItems: true,
        description:
          'containers the agent does not manage (by engine name): stopped before the release starts, removed when it succeeds, restarted when it fails',
      }),
    ),
  },
  { additionalProperties: false },
);

export const AppSchema = Type.Object(
  {
    name: Str(),
    uuid: Type.Optional(Str({ pattern: '^[A-Za-z0-9-]+$' })),
    release: ReleaseSchema,
  },
  { additionalProperties: false },
);

export const RegistrySchema = Type.Object(
  {
    url: Str({ description: 'registry host[:port]' }),
    username: Type.String(),
    password: Type.String(),
  },
  { additionalProperties: false },
);

export const TargetStateSchema = Type.Object(
  {
    name: Type.Optional(Str({ description: 'device name' })),
    config: Type.Optional(StrMap),
    registries: Type.Optional(Type.Record(Type.String({ minLength: 1 }), RegistrySchema)),
    apps: Type.Record(Type.String({ pattern: '^[1-9][0-9]{0,9}$' }), AppSchema),
    /** a gateway's dependent apps and the targets of its dependent devices (dependents.ts) */
    dependent: Type.Optional(DependentTargetSchema),
  },
  { additionalProperties: false },
);

export type ServiceTarget = Static<typeof ServiceSchema>;
export type VolumeTarget = Static<typeof VolumeSchema>;
export type NetworkTarget = Static<typeof NetworkSchema>;
export type ReleaseTarget = Static<typeof ReleaseSchema>;
export type AppTarget = Static<typeof AppSchema>;
export type RegistryCredentials = Static<typeof RegistrySchema>;
export type TargetState = Static<typeof TargetStateSchema>;
