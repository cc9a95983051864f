import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../../src/shared/errors.js';
import type { TargetState } from '../../src/shared/targetState.js';
import { dependenciesOf, validateTargetState } from '../../src/shared/validateTarget.js';
import { desired } from './helpers/planFixtures.js';

/** Every field the schema knows, used at least once. */
const full = (): TargetState => ({
  name: 'kitchen',
  config: { HOST_CONFIG_gpu_mem: '64' },
  registries: { acme: { url: 'https://registry.example.com', username: 'bot', password: 'pw' } },
  apps: {
    '1': {
      name: 'shop',
      uuid: 'a1b2-c3d4',
      release: {
        id: 7,
        commit: 'deadbeef',
        services: {
          db: {
            image: 'postgres:16',
            volumes: ['data:/var/lib/postgresql/data', '/etc/localtime:/etc/localtime:ro'],
            environment: { POSTGRES_PASSWORD: 'pw' },
            healthcheck: { test: ['CMD', 'pg_isready'], interval: '10s', timeout: 5000, retries: 5, start_period: '1m30s' },
            restart: 'unless-stopped',
            stop_signal: 'SIGINT',
            stop_grace_period: 60,
            mem_limit: '512m',
            cpus: 1.5,
          },
          api: {
            image: 'registry.example.com/acme/api@sha256:0123456789abcdef',
            registry: 'acme',
            depends_on: ['db'],
            networks: ['default', 'backend'],
            ports: ['8080:80', '127.0.0.1:9000:9000/udp', '[::1]:53:53'],
            command: 'node server.js --port 80',
            entrypoint: ['tini', '--'],
            labels: { 'io.balena.features.supervisor-api': '1' },
            working_dir: '/app',
            user: 'node',
            privileged: false,
            cap_add: ['NET_ADMIN'],
            cap_drop: ['ALL'],
            devices: ['/dev/ttyUSB0', '/dev/i2c-1:/dev/i2c-1:rw'],
            update_strategy: 'hand-over',
            handover_timeout: 30_000,
            required_tags: ['arm64'],
            running: true,
          },
          sidecar: { image: 'busybox', network_mode: 'service:api', command: null },
          monitor: { image: 'alpine:3.19', network_mode: 'host', restart: 'on-failure:3', mem_limit: 8_388_608 },
        },
        volumes: { data: { driver: 'local', driver_opts: { type: 'tmpfs' }, labels: { keep: 'yes' } } },
        networks: {
          backend: { driver: 'bridge', internal: true, labels: { tier: 'back' }, ipam: { config: [{ subnet: '10.10.0.0/24', gateway: '10.10.0.1' }] } },
        },
      },
    },
    '42': { name: 'empty', release: { id: 0, commit: 'c', services: {} } },
  },
});

/** A small valid target for mutation: app 1 with `web` and `db`. */
type Json = Record<string, any>;

const small = (): Json => ({
  apps: { '1': { name: 'a', release: { id: 1, commit: 'c', services: { web: { image: 'nginx' }, db: { image: 'postgres' } } } } },
});

const rejection = (input: unknown): ValidationError => {
  try {
    validateTargetState(input);
  } catch (err) {
    assert.ok(err instanceof ValidationError, `not a ValidationError: ${String(err)}`);
    return err;
  }
  assert.fail('target was accepted');
};

describe('validateTargetState accepts', () => {
  test('a target using every field, unchanged', () => {
    const input = full();
    assert.equal(validateTargetState(input), input);
    assert.deepEqual(input, full());
    assert.equal(desired(input).apps.get(1)!.services.size, 4);
  });

  test('a device without apps', () => {
    assert.deepEqual(validateTargetState({ apps: {} }), { apps: {} });
  });

  test('host binds without a declared volume, and the implicit default network', () => {
    const t = small();
    Object.assign(t.apps['1'].release.services.web, { volumes: ['/srv/www:/usr/share/nginx/html:ro'], networks: ['default'] });
    assert.doesNotThrow(() => validateTargetState(t));
  });
});

describe('validateTargetState rejects', () => {
  const web = '/apps/1/release/services/web';
  const cases: [string, (t: Json, s: Json) => void, string, RegExp?][] = [
    ['an image that is not a string', (_, s) => (s.web.image = 5), `${web}/image`, /Expected string/],
    ['an image with whitespace', (_, s) => (s.web.image = 'nginx latest'), `${web}/image`],
    ['a service without image', (_, s) => delete s.web.image, `${web}/image`, /required/],
    ['an unknown depends_on', (_, s) => (s.web.depends_on = ['db', 'cache']), `${web}/depends_on/1`, /unknown service "cache"/],
    ['a depends_on naming an Object.prototype member', (_, s) => (s.web.depends_on = ['constructor']), `${web}/depends_on/0`, /unknown service/],
    ['a service depending on itself', (_, s) => (s.web.depends_on = ['web']), `${web}/depends_on/0`, /itself/],
    ['a dependency cycle', (_, s) => ((s.web.depends_on = ['db']), (s.db.depends_on = ['web'])), `${web}/depends_on`, /cycle web -> db -> web/],
    [
      'a cycle through network_mode',
      (_, s) => ((s.web.network_mode = 'service:db'), (s.db.depends_on = ['web'])),
      `${web}/depends_on`,
      /cycle web -> db -> web/,
    ],
    ['network_mode of an unknown service', (_, s) => (s.web.network_mode = 'service:cache'), `${web}/network_mode`, /unknown service "cache"/],
    ['network_mode of the service itself', (_, s) => (s.web.network_mode = 'service:web'), `${web}/network_mode`],
    ['an unknown registry key', (_, s) => (s.web.registry = 'acme'), `${web}/registry`, /unknown registry "acme"/],
    ['a registry key naming an Object.prototype member', (t, s) => ((t.registries = {}), (s.web.registry = 'toString')), `${web}/registry`],
    ['an undeclared volume', (_, s) => (s.web.volumes = ['/host:/h', 'data:/data']), `${web}/volumes/1`, /undeclared volume "data"/],
    ['an undeclared network', (_, s) => (s.web.networks = ['default', 'backend']), `${web}/networks/1`, /undeclared network "backend"/],
    ['a bad restart value', (_, s) => (s.web.restart = 'sometimes'), `${web}/restart`],
    ['a bad update strategy', (_, s) => (s.web.update_strategy = 'rolling'), `${web}/update_strategy`],
    ['a bad port', (_, s) => (s.web.ports = ['80', 'http']), `${web}/ports/1`],
    ['a memory limit below 6 MiB', (_, s) => (s.web.mem_limit = 1024), `${web}/mem_limit`],
    ['an app id that is not a number', (t) => (t.apps.abc = t.apps['1']), '/apps/abc', /key must match/],
    ['app id 0', (t) => (t.apps['0'] = t.apps['1']), '/apps/0'],
    ['an app id with a leading zero', (t) => (t.apps['01'] = t.apps['1']), '/apps/01'],
    ['a bad service name', (_, s) => (s['-web'] = { image: 'nginx' }), '/apps/1/release/services/-web'],
    ['a bad volume name', (t) => (t.apps['1'].release.volumes = { 'a/b': {} }), '/apps/1/release/volumes/a~1b'],
    ['an unknown service property', (_, s) => (s.web.foo = 1), `${web}/foo`, /Unexpected property/],
    ['an unknown top-level property', (t) => (t.version = 3), '/version', /Unexpected property/],
    ['an unknown release property', (t) => (t.apps['1'].release.extra = true), '/apps/1/release/extra'],
    ['a negative release id', (t) => (t.apps['1'].release.id = -1), '/apps/1/release/id'],
  ];
  for (const [what, mutate, field, reason] of cases) {
    test(what, () => {
      const t = small();
      mutate(t, t.apps['1'].release.services);
      const err = rejection(t);
      assert.equal(err.field, field);
      if (reason) assert.match(err.reason, reason);
      assert.ok(err.message.startsWith(`invalid target state: ${field}: `), err.message);
    });
  }

  test('something that is not an object', () => {
    assert.equal(rejection(null).field, '');
    assert.equal(rejection([]).field, '');
  });
});

test('dependenciesOf: depends_on plus the network_mode service, once each', () => {
  assert.deepEqual(dependenciesOf({ image: 'x', depends_on: ['db', 'cache'], network_mode: 'service:db' }), ['db', 'cache']);
  assert.deepEqual(dependenciesOf({ image: 'x', network_mode: 'service:vpn' }), ['vpn']);
  assert.deepEqual(dependenciesOf({ image: 'x', network_mode: 'host' }), []);
});
