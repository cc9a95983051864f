// What the releases test files start from: a registry, a project with devices, and the AutoPi
// reference's release payload.
import type { Server } from '../../src/server/server.js';
import { user } from './helpers.js';

async function addDevice(server: Server, id: string): Promise<void> {
  await server.db
    .insertInto('device')
    .values({
      id,
      unit_id: `unit-${id}`,
      device_type: 'raspberrypi4-64',
      name: `truck-${id}`,
      device_key_hash: `digest-${id}`,
      created_at: new Date().toISOString(),
    })
    .execute();
}

/** A registry, a project with two devices (and a third device outside it). */
export async function fixture(server: Server) {
  const call = user(server);
  const registry = Number(
    (await call('POST', '/docker/registries/', { url: 'https://registry.example.com:5000', username: 'bob', password: 'pw-used' })).body.id,
  );
  const unused = Number((await call('POST', '/docker/registries/', { url: 'other.example.org', username: 'eve', password: 'pw-unused' })).body.id);
  for (const d of ['dev-a', 'dev-b', 'dev-c']) await addDevice(server, d);
  const project = Number((await call('POST', '/docker/projects/', { name: 'trucks', devices: ['dev-a', 'dev-b'] })).body.id);
  return { call, registry, unused, project, releases: `/docker/projects/${project}/releases` };
}

/** The reference's payload: read-only fields included (ignored), both environment forms. */
export const documented = (registry: number) => ({
  id: 1,
  version: '1.0.0',
  version_hash: '96a7191f',
  containers: [
    {
      name: 'curveball',
      image: 'curveball',
      tag: 'delta-base-r0.0.0.1',
      required_tags: ['base'],
      startup_parameters: {
        environment: "REQUESTS_CA_BUNDLE='/usr/local/share/ca-certificates/AdamCA.crt'",
        binds: ['/home/balenaEngine/data:/opt/RavenDB/Server/RavenData'],
        network_mode: 'host',
        restart_policy: 'always',
        privileged: true,
      },
      purge_data: false,
      registry,
      fully_qualified_name: 'deployment-curveball-1',
    },
    {
      name: 'ravendb',
      image: 'ravendb',
      tag: 'base',
      required_tags: [],
      startup_parameters: {
        environment: ['RAVEN_ARGS=--config-path /opt/RavenDB/Server/RavenData/settings.json', 'RAVEN_Setup_Mode=None'],
        binds: ['/data/ravendb:/opt/RavenDB/Server/RavenData'],
        port_bindings: { '8080/tcp': 8080, '38888/tcp': ['127.0.0.1', 38888] },
        restart_policy: 'always',
        privileged: true,
      },
      purge_data: true,
      registry,
      fully_qualified_name: 'deployment-ravendb-1',
    },
  ],
  successful_deployments: ['dev-a'],
  remove_containers: ['curveball-old'],
});
