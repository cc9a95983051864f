// The shape of a release's containers as the API takes them (AutoPi's): names, tags and the
// startup parameters, which take Salt's forms and docker-py's alike (see startupParameters.ts).
import { Type, type Static } from '@sinclair/typebox';
import { HealthcheckSchema } from '../../shared/targetState.js';

/** A container's name: it becomes the service name (and a DNS name on the app's network). */
export const CONTAINER_NAME_PATTERN = '^[a-zA-Z0-9][a-zA-Z0-9_.-]*$';
export const CONTAINER_NAME_MAX = 63;
/** An image tag, as the engine accepts it. */
export const TAG_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$';

const StrList = (description: string) =>
  Type.Union([Type.Array(Type.String()), Type.String({ description: `${description}, comma-separated` })], { description });
const PortHostScalar = Type.Union([Type.Integer(), Type.String(), Type.Null()]);
const PortHostTuple = Type.Array(Type.Union([Type.String(), Type.Integer()]), { minItems: 1, maxItems: 2, description: '[host_ip] or [host_ip, host_port]' });

/** The startup parameters a release container may give; anything else is refused by name. */
export const StartupParametersSchema = Type.Object(
  {
    environment: Type.Optional(
      Type.Union(
        [
          Type.Array(Type.String(), { description: '"KEY=VALUE" strings' }),
          Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()])),
          Type.String({ description: `shell-quoted KEY=VALUE pairs: "A='x y' B=z"` }),
        ],
        { description: 'a list of KEY=VALUE strings, an object, or the string form' },
      ),
    ),
    binds: Type.Optional(
      Type.Union([
        Type.Array(Type.String(), { description: '"/host/path:/container/path[:ro|rw]" or "volume:/container/path[:ro|rw]"' }),
        Type.String({ description: 'the same, comma-separated' }),
        Type.Record(
          Type.String(),
          Type.Union([
            Type.String(),
            Type.Object({ bind: Type.String(), mode: Type.Optional(Type.String()), ro: Type.Optional(Type.Boolean()) }, { additionalProperties: false }),
          ]),
          { description: 'docker-py: {"/host": {"bind": "/container", "mode": "ro"}}' },
        ),
      ]),
    ),
    volumes: Type.Optional(StrList('volume specs as in binds; a bare container path only where a bind mounts it')),
    port_bindings: Type.Optional(
      Type.Union([
        Type.Array(Type.String(), { description: 'Salt: "[host_ip:[host_port]:]host_port:container_port[/udp]", port ranges allowed' }),
        Type.String({ description: 'the same, comma-separated' }),
        Type.Record(Type.String(), Type.Union([PortHostScalar, PortHostTuple, Type.Array(Type.Union([PortHostScalar, PortHostTuple]))]), {
          description: 'docker-py: {"80/tcp": 8080, "53/udp": ["127.0.0.1", 53], "9000": [9000, 9001]}',
        }),
      ]),
    ),
    network_mode: Type.Optional(Type.String({ description: 'bridge, host, none, or container:<name> of a container of this release' })),
    restart_policy: Type.Optional(
      Type.Union([
        Type.String({ description: 'no, always, unless-stopped, on-failure[:N]; default no' }),
        Type.Object({ Name: Type.String(), MaximumRetryCount: Type.Optional(Type.Integer({ minimum: 0 })) }, { additionalProperties: false }),
      ]),
    ),
    privileged: Type.Optional(Type.Boolean()),
    command: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
    entrypoint: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
    labels: Type.Optional(Type.Union([Type.Record(Type.String(), Type.String()), Type.Array(Type.String({ description: 'KEY=VALUE or KEY' }))])),
    cap_add: Type.Optional(StrList('capabilities to add')),
    cap_drop: Type.Optional(StrList('capabilities to drop')),
    devices: Type.Optional(StrList('"/dev/host[:/dev/container][:rwm]"')),
    working_dir: Type.Optional(Type.String()),
    user: Type.Optional(Type.Union([Type.String(), Type.Integer({ minimum: 0 })])),
    mem_limit: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.String({ description: 'bytes, or a number with b, k, m or g' })])),
    stop_signal: Type.Optional(Type.String()),
    stop_timeout: Type.Optional(Type.Integer({ minimum: 0, maximum: 3600, description: 'seconds' })),
    healthcheck: Type.Optional(HealthcheckSchema),
    depends_on: Type.Optional(Type.Array(Type.String(), { uniqueItems: true, description: 'containers of this release started before this one' })),
  },
  { additionalProperties: false },
);
export type StartupParameters = Static<typeof StartupParametersSchema>;

/** The name of a container on the device in AutoPi's scheme (`deployment-<name>-<release id>`). */
export const fullyQualifiedName = (name: string, releaseId: number) => `deployment-${name}-${releaseId}`;
