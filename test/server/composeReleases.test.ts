// Releases from a docker-compose.yml (`compose` in the release body): what each supported key
// becomes in the devices' targets, and the 400 naming the key for what cannot be honoured,
// malformed YAML, alias bombs and oversized files. Nothing is stored for a refused file.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { describe, test } from 'node:test';
import type { Server } from '../../src/server/server.js';
import { backends } from './backends.js';
import { user } from './helpers.js';

async function fixture(server: Server) {
  const call = user(server);
  await server.db
    .insertInto('device')
    .values({ id: 'dev-a', unit_id: 'unit-a', device_type: 'raspberrypi4-64', name: 'a', device_key_hash: 'digest-a', created_at: new Date().toISOString() })
    .execute();
  const registry = Number((await call('POST', '/docker/registries/', { url: 'registry.example.com:5000', username: 'bob', password: 'pw' })).body.id);
  const project = Number((await call('POST', '/docker/projects/', { name: 'trucks', devices: ['dev-a'], default_registry: registry })).body.id);
  return { call, project, releases: `/docker/projects/${project}/releases/` };
}

const FULL = `
version: "3.8"
x-common: &common
  restart: unless-stopped
  labels:
    team: edge
services:
  db:
    image: acme/db:15
    volumes:
      - data:/var/lib/db
      - type: bind
        source: /data/db-conf
        target: /etc/db
        read_only: true
    environment:
      POSTGRES_PASSWORD: "s3cret"
      RETRIES: 3
    healthcheck:
      test: ["CMD-SHELL", "pg_isready"]
      interval: 10s
      timeout: 5s
      retries: 5
      start_period: 1m
  web:
    <<: *common
    image: ghcr.io/acme/web@sha256:${'a'.repeat(64)}
    command: sh -c 'echo $$HOME'
    entrypoint: ["/bin/sh"]
    env_file: [./web.env, { path: ./optional.env, required: false }]
    environment: [MODE=prod, GREETING=overridden]
    ports:
      - 8080:80
      - "127.0.0.1:9000:9000/udp"
      - target: 443
        published: 8443
        host_ip: 127.0.0.1
        protocol: tcp
    networks: [default]
    depends_on:
      db:
        condition: service_started
    privileged: true
    devices: ["/dev/ttyUSB0:/dev/ttyUSB0:rwm"]
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    working_dir: /app
    user: "1000:1000"
    mem_limit: 256m
    stop_signal: SIGINT
    stop_grace_period: 1m30s
    x-notes: ignored
  sidecar:
    image: acme/sidecar
    network_mode: service:web
    restart: "no"
volumes:
  data:
networks:
  default:
`;

/** Each file is refused with 400 naming this field, and a reason matching. */
const BAD: [string, string, string, RegExp][] = [
  ['not YAML', 'services: [web\n', 'compose', /not valid YAML/],
  ['a duplicate key', 'services:\n  web:\n    image: a\n    image: b\n', 'compose', /not valid YAML.*[Uu]nique|duplicate/i],
  ['a scalar document', 'hello\n', 'compose', /mapping with "services"/],
  ['no services', 'version: "3"\n', 'services', /required/],
  ['an unknown top-level key', 'services:\n  web: {image: a}\nsecrets: {}\n', 'secrets', /not supported/],
  ['build', 'services:\n  web:\n    build: .\n', 'services.web.build', /build and push the image/],
  ['no image', 'services:\n  web:\n    command: ["x"]\n', 'services.web.image', /required/],
  ['an unknown service key', 'services:\n  web:\n    image: a\n    tmpfs: /run\n', 'services.web.tmpfs', /not supported/],
  ['container_name', 'services:\n  web:\n    image: a\n    container_name: w\n', 'services.web.container_name', /named after the service/],
  ['a bad port', 'services:\n  web:\n    image: a\n    ports: ["80", "http:80"]\n', 'services.web.ports[1]', /is not/],
  ['a port out of range', 'services:\n  web:\n    image: a\n    ports: ["8080:80", "70000:80"]\n', 'services.web.ports[1]', /1-65535/],
  ['a long port without target', 'services:\n  web:\n    image: a\n    ports: [{published: 80}]\n', 'services.web.ports[0].target', /required/],
  ['a long port key', 'services:\n  web:\n    image: a\n    ports: [{target: 80, name: web}]\n', 'services.web.ports[0].name', /not supported/],
  ['an anonymous volume', 'services:\n  web:\n    image: a\n    volumes: [/data]\n', 'services.web.volumes[0]', /anonymous volume/],
  ['a relative bind', 'services:\n  web:\n    image: a\n    volumes: ["./x:/x"]\n', 'services.web.volumes[0]', /absolute host path/],
  ['an undeclared volume', 'services:\n  web:\n    image: a\n    volumes: ["data:/x"]\n', 'services.web.volumes[0]', /not declared/],
  ['a volume mode', 'services:\n  web:\n    image: a\n    volumes: ["/d:/x:z"]\n', 'services.web.volumes[0]', /ro or rw/],
  ['a tmpfs mount', 'services:\n  web:\n    image: a\n    volumes: [{type: tmpfs, target: /x}]\n', 'services.web.volumes[0].type', /volume or bind/],
  ['volume options', 'services:\n  web: {image: a}\nvolumes:\n  data: {driver: nfs}\n', 'volumes.data', /not supported/],
  ['a custom network', 'services:\n  web:\n    image: a\n    networks: [default, back]\n', 'services.web.networks[1]', /default network/],
  ['a top-level network', 'services:\n  web: {image: a}\nnetworks:\n  back: {}\n', 'networks.back', /default network/],
  ['an unset variable', 'services:\n  web:\n    image: a\n    environment: [TOKEN]\n', 'services.web.environment[0]', /has no value/],
  ['a null variable', 'services:\n  web:\n    image: a\n    environment: {TOKEN: null}\n', 'services.web.environment.TOKEN', /has no value/],
  ['a bad variable name', 'services:\n  web:\n    image: a\n    environment: {"A B": x}\n', 'services.web.environment["A B"]', /variable name/],
  ['interpolation', 'services:\n  web:\n    image: acme/web:\u0024{TAG}\n', 'services.web.image', /does not interpolate/],
  ['a bare variable', 'services:\n  web:\n    image: a\n    command: [sh, -c, echo $HOME]\n', 'services.web.command[2]', /does not interpolate/],
  ['a missing env_file', 'services:\n  web:\n    image: a\n    env_file: ./web.env\n', 'services.web.env_file', /env_files/],
  ['a bad env_file line', 'services:\n  web:\n    image: a\n    env_file: [./bad.env]\n', 'services.web.env_file[0]', /line 2/],
  ['a bad restart', 'services:\n  web:\n    image: a\n    restart: sometimes\n', 'services.web.restart', /no, always/],
  [
    'a healthy condition',
    'services:\n  db: {image: a}\n  web:\n    image: a\n    depends_on: {db: {condition: service_healthy}}\n',
    'services.web.depends_on.db.condition',
    /service_started/,
  ],
  ['an unknown dependency', 'services:\n  web:\n    image: a\n    depends_on: [db]\n', 'services.web.depends_on[0]', /no container "db"/],
  ['a dependency cycle', 'services:\n  a:\n    image: a\n    depends_on: [b]\n  b:\n    image: a\n    depends_on: [a]\n', 'services.a.depends_on', /cycle/],
  [
    'a bad duration',
    'services:\n  web:\n    image: a\n    healthcheck: {test: [CMD, x], interval: 1.5s}\n',
    'services.web.healthcheck.interval',
    /not a duration/,
  ],
  [
    'start_interval',
    'services:\n  web:\n    image: a\n    healthcheck: {test: [CMD, x], start_interval: 1s}\n',
    'services.web.healthcheck.start_interval',
    /not supported/,
  ],
  ['a bad stop_grace_period', 'services:\n  web:\n    image: a\n    stop_grace_period: 1.5s\n', 'services.web.stop_grace_period', /whole seconds/],
  ['a bad image', 'services:\n  web:\n    image: "Acme/Web"\n', 'services.web.image', /not an image name/],
  ['a bad capability', 'services:\n  web:\n    image: a\n    cap_add: [NET_ADMIN, "x y"]\n', 'services.web.cap_add[1]', /not a capability/],
  ['a bad device', 'services:\n  web:\n    image: a\n    devices: [ttyUSB0]\n', 'services.web.devices[0]', /dev/],
  ['a privileged string', 'services:\n  web:\n    image: a\n    privileged: "yes"\n', 'services.web.privileged', /true or false/],
  ['a bad service name', 'services:\n  "-web":\n    image: a\n', 'services["-web"]', /valid name/],
  ['network_mode of an unknown service', 'services:\n  web:\n    image: a\n    network_mode: service:db\n', 'services.web.network_mode', /no container "db"/],
  ['a relative working_dir', 'services:\n  web:\n    image: a\n    working_dir: app\n', 'services.web.working_dir', /absolute/],
  ['a tiny mem_limit', 'services:\n  web:\n    image: a\n    mem_limit: 1k\n', 'services.web.mem_limit', /minimum/],
  [
    'an alias bomb',
    `a: &a ["x","x","x","x","x","x","x","x","x","x"]\n${Array.from(
      { length: 9 },
      (_, i) =>
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(97 + i)}`)
          .join(',')}]`,
    ).join('\n')}\nservices: {web: {image: a}}\n`,
    'compose',
    /resource exhaustion/,
  ],
  ['deep nesting', `services: ${'['.repeat(5000)}${']'.repeat(5000)}\n`, 'compose', /not valid YAML/],
];

for (const backend of backends()) {
  describe(`compose releases on ${backend.name}`, () => {
    test('every supported key reaches the device target; env_file contents merge under environment; $$ is a literal $', async (t) => {
      const server = await backend.start(t);
      const { call, project, releases } = await fixture(server);
      const created = await call('POST', releases, {
        version: '2.0.0',
        compose: FULL,
        env_files: { './web.env': '# comment\nexport GREETING=hello\nQUOTED="a b\\n"\nLITERAL=\'$x\'\nTRAIL=v # note\n' },
      });
      assert.equal(created.status, 201, created.text);
      assert.deepEqual(
        (created.body.containers as unknown as { name: string; image: string; tag: string }[]).map((c) => [c.name, c.image, c.tag]),
        [
          ['db', 'acme/db', '15'],
          ['web', 'ghcr.io/acme/web', `sha256:${'a'.repeat(64)}`],
          ['sidecar', 'acme/sidecar', 'latest'],
        ],
      );
      const services = (await server.targets.get('dev-a'))!.target.apps[String(project)]!.release.services;
      assert.deepEqual(services.db, {
        image: 'registry.example.com:5000/acme/db:15',
        registry: `registry-${1}`,
        environment: { POSTGRES_PASSWORD: 's3cret', RETRIES: '3' },
        volumes: ['data:/var/lib/db', '/data/db-conf:/etc/db:ro'],
        restart: 'no',
        healthcheck: { test: ['CMD-SHELL', 'pg_isready'], interval: '10s', timeout: '5s', retries: 5, start_period: '1m' },
      });
      assert.deepEqual(services.web, {
        image: `ghcr.io/acme/web@sha256:${'a'.repeat(64)}`,
        registry: 'registry-1',
        command: "sh -c 'echo $HOME'",
        entrypoint: ['/bin/sh'],
        environment: { GREETING: 'overridden', QUOTED: 'a b\n', LITERAL: '$x', TRAIL: 'v', MODE: 'prod' },
        ports: ['8080:80/tcp', '127.0.0.1:9000:9000/udp', '127.0.0.1:8443:443/tcp'],
        restart: 'unless-stopped',
        labels: { team: 'edge' },
        depends_on: ['db'],
        privileged: true,
        devices: ['/dev/ttyUSB0:/dev/ttyUSB0:rwm'],
        cap_add: ['NET_ADMIN'],
        cap_drop: ['MKNOD'],
        working_dir: '/app',
        user: '1000:1000',
        mem_limit: '256m',
        stop_signal: 'SIGINT',
        stop_grace_period: 90,
      });
      assert.deepEqual(services.sidecar, {
        image: 'registry.example.com:5000/acme/sidecar:latest',
        registry: 'registry-1',
        network_mode: 'service:web',
        restart: 'no',
      });
      const app = (await server.targets.get('dev-a'))!.target.apps[String(project)]!;
      assert.deepEqual(app.release.volumes, { data: {} });

      // PUT and PATCH take a compose file too
      const patched = await call('PATCH', `${releases}${created.body.id}/`, { compose: 'services:\n  web:\n    image: acme/web:2\n' });
      assert.equal(patched.status, 200, patched.text);
      assert.deepEqual(
        (patched.body.containers as unknown as { name: string }[]).map((c) => c.name),
        ['web'],
      );
    });

    test("the README's example (examples/docker-compose.yml) is a valid release", async (t) => {
      const server = await backend.start(t);
      const { call, project, releases } = await fixture(server);
      const compose = await fs.readFile(new URL('../../examples/docker-compose.yml', import.meta.url), 'utf8');
      const created = await call('POST', releases, { version: '1.0.0', compose });
      assert.equal(created.status, 201, created.text);
      const web = (await server.targets.get('dev-a'))!.target.apps[String(project)]!.release.services.web!;
      assert.deepEqual([web.image, web.ports, web.restart], ['registry.example.com:5000/bosun-test/app:v1', ['127.0.0.1:8080:8080/tcp'], 'always']);
    });

    test('a file that cannot be honoured is a 400 naming the key; nothing is stored', async (t) => {
      const server = await backend.start(t);
      const { call, releases } = await fixture(server);
      const failures: string[] = [];
      for (const [what, compose, field, reason] of BAD) {
        const res = await call('POST', releases, { version: `v-${what}`, compose, env_files: { './bad.env': 'A=1\nnot a pair\n' } });
        if (res.status !== 400 || res.body.field !== field || !reason.test(String(res.body.detail))) {
          failures.push(`${what}: ${res.status} ${res.text}`);
        }
      }
      assert.deepEqual(failures, []);
      assert.deepEqual((await call('GET', releases)).body, [], 'nothing was stored');
    });

    test('the body: compose or containers (not both), env_files only with compose, a size limit, an empty file only with allow_empty', async (t) => {
      const server = await backend.start(t);
      const { call, releases } = await fixture(server);
      const web = 'services:\n  web: {image: a}\n';
      const both = await call('POST', releases, { version: '1', compose: web, containers: [{ name: 'web', image: 'a' }] });
      assert.deepEqual([both.status, both.body.field], [400, '/compose']);
      const orphanEnv = await call('POST', releases, { version: '1', containers: [{ name: 'web', image: 'a' }], env_files: { a: 'B=1' } });
      assert.deepEqual([orphanEnv.status, orphanEnv.body.field], [400, '/env_files']);
      const neither = await call('POST', releases, { version: '1' });
      assert.deepEqual([neither.status, neither.body.field], [400, '/containers']);
      const big = await call('POST', releases, { version: '1', compose: `${web}# ${'x'.repeat(300 * 1024)}\n` });
      assert.deepEqual([big.status, big.body.field], [400, '/compose']);
      const empty = await call('POST', releases, { version: '1', compose: 'services: {}\n' });
      assert.deepEqual([empty.status, empty.body.field], [400, 'services']);
      const meant = await call('POST', releases, { version: '1', compose: 'services: {}\n', allow_empty: true });
      assert.equal(meant.status, 201, meant.text);
    });

    test('the OpenAPI document describes compose with an example', async (t) => {
      const server = await backend.start(t);
      const doc = (await user(server)('GET', '/openapi.json')).body as unknown as {
        paths: Record<
          string,
          { post?: { requestBody: { content: Record<string, { schema: { properties: Record<string, { example?: unknown; description?: string }> } }> } } }
        >;
      };
      const body = doc.paths['/docker/projects/{project_pk}/releases/']!.post!.requestBody.content['application/json']!.schema.properties;
      assert.match(String(body.compose!.description), /docker-compose\.yml/);
      assert.match(String(body.compose!.example), /services:/);
      assert.ok(body.env_files);
    });
  });
}
