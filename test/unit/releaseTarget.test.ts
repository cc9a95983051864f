// releaseApp: a release's containers (AutoPi shapes, Salt and docker-py forms of the startup
// parameters) → the app a device's agent runs; every refusal names the release's field.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ValidationError } from '../../src/shared/errors.js';
import { validateTargetState } from '../../src/shared/validateTarget.js';
import { registryHost } from '../../src/server/targets/imageReference.js';
import { fullyQualifiedName, type StartupParameters } from '../../src/server/targets/releaseSchema.js';
import { releaseApp, validateReleaseApp, type RegistryRecord, type ReleaseContainer } from '../../src/server/targets/releaseTarget.js';
import { shellWords } from '../../src/server/targets/shellWords.js';

const registries = new Map<number, RegistryRecord>([
  [1, { id: 1, url: 'registry.example.com:5000', username: 'bob', password: 'pw1' }],
  [2, { id: 2, url: 'https://other.example.org/v2/', username: 'carol', password: 'pw2' }],
]);
const release = (defaultRegistry: number | null = null) => ({
  id: 7,
  version_hash: '96a7191f',
  project: { id: 3, name: 'fleet', default_registry: defaultRegistry },
});
const container = (over: Partial<ReleaseContainer> = {}): ReleaseContainer => ({
  name: 'app',
  image: 'app',
  tag: 'v1',
  required_tags: [],
  startup_parameters: {},
  purge_data: false,
  registry: null,
  ...over,
});
const withParams = (startup_parameters: StartupParameters) => [container({ startup_parameters })];
const service = (containers: ReleaseContainer[], name = 'app', defaultRegistry: number | null = null) =>
  releaseApp(release(defaultRegistry), containers, registries).app.release.services[name]!;

/** The ValidationError releaseApp (or validateReleaseApp) throws, for its field and reason. */
function refusal(containers: ReleaseContainer[], check = releaseApp, defaultRegistry: number | null = null): ValidationError {
  try {
    check(release(defaultRegistry), containers, registries);
  } catch (err) {
    assert.ok(err instanceof ValidationError, String(err));
    return err;
  }
  assert.fail('expected a ValidationError');
}

describe('releaseApp', () => {
  test("the reference's documented payload becomes a valid app with its registry", () => {
    const params = {
      environment: "REQUESTS_CA_BUNDLE='/usr/local/share/ca-certificates/AdamCA.crt'",
      binds: ['/home/balenaEngine/data:/opt/RavenDB/Server/RavenData'],
      network_mode: 'host',
      restart_policy: 'always',
      privileged: true,
    };
    const containers = [
      container({ name: 'curveball', image: 'curveball', tag: 'delta-base-r0.0.0.1', required_tags: ['base'], startup_parameters: params, registry: 1 }),
      container({
        name: 'ravendb',
        image: 'ravendb',
        tag: 'base',
        startup_parameters: { ...params, environment: "RAVEN_ARGS='--config-path /opt/RavenDB/Server/RavenData/settings.json'" },
        registry: 1,
      }),
    ];
    const out = validateReleaseApp(release(), containers, registries);
    assert.deepEqual(out.app, {
      name: 'fleet',
      uuid: '3',
      release: {
        id: 7,
        commit: '96a7191f',
        services: {
          curveball: {
            image: 'registry.example.com:5000/curveball:delta-base-r0.0.0.1',
            environment: { REQUESTS_CA_BUNDLE: '/usr/local/share/ca-certificates/AdamCA.crt' },
            volumes: ['/home/balenaEngine/data:/opt/RavenDB/Server/RavenData'],
            network_mode: 'host',
            restart: 'always',
            privileged: true,
            required_tags: ['base'],
            registry: 'registry-1',
          },
          ravendb: {
            image: 'registry.example.com:5000/ravendb:base',
            environment: { RAVEN_ARGS: '--config-path /opt/RavenDB/Server/RavenData/settings.json' },
            volumes: ['/home/balenaEngine/data:/opt/RavenDB/Server/RavenData'],
            network_mode: 'host',
            restart: 'always',
            privileged: true,
            registry: 'registry-1',
          },
        },
      },
    });
    assert.deepEqual(out.registries, { 'registry-1': { url: 'registry.example.com:5000', username: 'bob', password: 'pw1' } }, 'only the registries used');
    validateTargetState({ apps: { '3': out.app }, registries: out.registries });
    assert.equal(fullyQualifiedName('curveball', 1), 'deployment-curveball-1');
  });

  test('environment: a list of KEY=VALUE, an object, or the shell-quoted string form', () => {
    assert.deepEqual(service(withParams({ environment: ['A=1', 'B=x=y', 'EMPTY='] })).environment, { A: '1', B: 'x=y', EMPTY: '' });
    assert.deepEqual(service(withParams({ environment: { A: 'x y', N: 5, T: true } })).environment, { A: 'x y', N: '5', T: 'true' });
    assert.deepEqual(service(withParams({ environment: `A='x y' B=z C="say \\"hi\\"" D=a\\ b` })).environment, { A: 'x y', B: 'z', C: 'say "hi"', D: 'a b' });
    // nothing is expanded or interpreted: no variables, globs, operators or comments
    assert.deepEqual(service(withParams({ environment: 'H=$HOME G=* S=a;b C=x#y P=a|b' })).environment, { H: '$HOME', G: '*', S: 'a;b', C: 'x#y', P: 'a|b' });
    assert.deepEqual(service(withParams({ environment: '' })).environment, {});

    const item = refusal(withParams({ environment: ['A=1', 'oops'] }));
    assert.equal(item.field, '/containers/0/startup_parameters/environment/1');
    assert.match(item.reason, /KEY=VALUE/);
    assert.equal(refusal(withParams({ environment: ['=x'] })).field, '/containers/0/startup_parameters/environment/0');
    assert.equal(refusal(withParams({ environment: "A='unterminated" })).field, '/containers/0/startup_parameters/environment');
    assert.equal(refusal(withParams({ environment: 'A=1 lonely' })).field, '/containers/0/startup_parameters/environment');
    assert.equal(refusal(withParams({ environment: { 'A B': 'x' } })).field, '/containers/0/startup_parameters/environment/A B');
  });

  test('shellWords splits as Python shlex.split does', () => {
    assert.deepEqual(shellWords(`  a  'b c'd "e\\"f" g\\ h "\\x" ''  `, ''), ['a', 'b cd', 'e"f', 'g h', '\\x', '']);
    assert.throws(
      () => shellWords('a\\', '/x'),
      (e: ValidationError) => e.field === '/x',
    );
    assert.throws(() => shellWords('"a', '/x'), /unterminated double quote/);
  });

  test('port_bindings: docker-py objects, Salt lists and comma-separated strings', () => {
    const ports = (port_bindings: StartupParameters['port_bindings']) => service(withParams({ port_bindings })).ports;
    assert.deepEqual(ports({ '80/tcp': 8080, '53/udp': ['127.0.0.1', 53], 9000: [9000, '9001'], '22': null, 443: '0.0.0.0:8443', 5000: ['::1', 5000] }), [
      // integer-like keys come first, in numeric order (JavaScript's key order)
      '22/tcp',
      '0.0.0.0:8443:443/tcp',
      '[::1]:5000:5000/tcp',
      '9000:9000/tcp',
      '9001:9000/tcp',
      '8080:80/tcp',
      '127.0.0.1:53:53/udp',
    ]);
    assert.deepEqual(ports({ 8080: [['127.0.0.1', 80], ['10.0.0.1']] }), ['127.0.0.1:80:8080/tcp', '10.0.0.1::8080/tcp']);
    assert.deepEqual(ports(['8080:80', '127.0.0.1:5353:53/udp', '127.0.0.1::9000', '7000', '6000-6002:7000-7002']), [
      '8080:80/tcp',
      '127.0.0.1:5353:53/udp',
      '127.0.0.1::9000/tcp',
      '7000/tcp',
      '6000:7000/tcp',
      '6001:7001/tcp',
      '6002:7002/tcp',
    ]);
    assert.deepEqual(ports('8080:80, 53:53/udp'), ['8080:80/tcp', '53:53/udp']);
    assert.equal(service(withParams({ port_bindings: [] })).ports, undefined);

    assert.equal(refusal(withParams({ port_bindings: { http: 80 } })).field, '/containers/0/startup_parameters/port_bindings/http');
    assert.equal(refusal(withParams({ port_bindings: { '80/tcp': 70000 } })).field, '/containers/0/startup_parameters/port_bindings/80~1tcp');
    assert.equal(refusal(withParams({ port_bindings: { 80: [8080, 'x'] } })).field, '/containers/0/startup_parameters/port_bindings/80/1');
    assert.equal(refusal(withParams({ port_bindings: ['8080:80', '80:x'] })).field, '/containers/0/startup_parameters/port_bindings/1');
    assert.match(refusal(withParams({ port_bindings: ['6000-6001:7000-7002'] })).reason, /ranges differ/);
    assert.match(refusal(withParams({ port_bindings: ['1-5000'] })).reason, /more than 1024/);
  });

  test('restart_policy: Salt strings and docker-py objects; none means no restart (Docker and AutoPi default)', () => {
    const restart = (restart_policy?: StartupParameters['restart_policy']) =>
      service(withParams(restart_policy === undefined ? {} : { restart_policy })).restart;
    assert.equal(restart(), 'no');
    assert.equal(restart('always'), 'always');
    assert.equal(restart('unless-stopped'), 'unless-stopped');
    assert.equal(restart('on-failure:3'), 'on-failure:3');
    assert.equal(restart(''), 'no');
    assert.equal(restart({ Name: 'on-failure', MaximumRetryCount: 5 }), 'on-failure:5');
    assert.equal(restart({ Name: 'on-failure', MaximumRetryCount: 0 }), 'on-failure');
    assert.equal(restart({ Name: 'always' }), 'always');
    assert.equal(restart({ Name: '' }), 'no');
    assert.equal(refusal(withParams({ restart_policy: 'sometimes' })).field, '/containers/0/startup_parameters/restart_policy');
    assert.equal(refusal(withParams({ restart_policy: { Name: 'sometimes' } })).field, '/containers/0/startup_parameters/restart_policy/Name');
  });

  test("registry qualification: the container's registry, else the project's default; an image naming its own host keeps it", () => {
    assert.equal(service([container({ registry: 2 })]).image, 'other.example.org/app:v1', 'scheme and /v2/ API path dropped');
    assert.equal(service([container()], 'app', 1).image, 'registry.example.com:5000/app:v1', 'the default registry');
    assert.equal(service([container()], 'app', 1).registry, 'registry-1');
    assert.equal(service([container({ registry: 2 })], 'app', 1).registry, 'registry-2', "the container's own registry wins");
    assert.equal(service([container({ image: 'acme/app' })]).image, 'acme/app:v1', 'no registry: Docker Hub');
    assert.equal(service([container({ image: 'ghcr.io/acme/app', registry: 1 })]).image, 'ghcr.io/acme/app:v1');
    const digest = `sha256:${'ab'.repeat(32)}`;
    assert.equal(service([container({ tag: digest, registry: 1 })]).image, `registry.example.com:5000/app@${digest}`);
    const { registries: used } = releaseApp(release(), [container({ name: 'a' }), container({ name: 'b', registry: 2 })], registries);
    assert.deepEqual(Object.keys(used), ['registry-2']);
    assert.equal(registryHost('https://index.docker.io/v1/'), 'index.docker.io');
    assert.equal(registryHost('registry.example.com/team'), 'registry.example.com/team');
    assert.equal(registryHost('not a host'), undefined);

    assert.equal(refusal([container({ registry: 9 })]).field, '/containers/0/registry');
    assert.match(refusal([container()], releaseApp, 9).reason, /default registry 9/);
  });

  test('names, images and tags are checked with the field named', () => {
    const dup = refusal([container({ name: 'a' }), container({ name: 'b' }), container({ name: 'a' })]);
    assert.equal(dup.field, '/containers/2/name');
    assert.match(dup.reason, /\/containers\/0/);
    assert.equal(refusal([container({ name: '-x' })]).field, '/containers/0/name');
    assert.equal(refusal([container({ name: 'a'.repeat(64) })]).field, '/containers/0/name');
    assert.equal(refusal([container({ image: 'app:latest' })]).field, '/containers/0/image');
    assert.equal(refusal([container({ image: 'App' })]).field, '/containers/0/image');
    assert.equal(refusal([container({ image: 'bad host!/app' })]).field, '/containers/0/image');
    assert.equal(refusal([container({ image: '' })]).field, '/containers/0/image');
    assert.equal(refusal([container({ tag: 'v 1' })]).field, '/containers/0/tag');
    assert.equal(refusal([container({ required_tags: ['ok', '-bad'] })]).field, '/containers/0/required_tags/1');
  });

  test('binds and volumes: host paths, named volumes (declared on the app), docker-py objects; anonymous volumes refused', () => {
    const out = releaseApp(
      release(),
      withParams({ binds: { '/srv/a': '/a', '/srv/b': { bind: '/b', mode: 'ro' }, data: { bind: '/data', ro: true } }, volumes: ['/a', 'cache:/cache'] }),
      registries,
    );
    assert.deepEqual(out.app.release.services.app!.volumes, ['/srv/a:/a', '/srv/b:/b:ro', 'data:/data:ro', 'cache:/cache']);
    assert.deepEqual(out.app.release.volumes, { data: {}, cache: {} });
    assert.deepEqual(service(withParams({ binds: '/x:/x, /y:/y:ro' })).volumes, ['/x:/x', '/y:/y:ro']);
    assert.equal(refusal(withParams({ binds: ['/x:/x', './rel:/y'] })).field, '/containers/0/startup_parameters/binds/1');
    assert.equal(refusal(withParams({ binds: ['/x:relative'] })).field, '/containers/0/startup_parameters/binds/0');
    assert.equal(refusal(withParams({ binds: ['/x:/x:z'] })).field, '/containers/0/startup_parameters/binds/0');
    const anonymous = refusal(withParams({ volumes: ['/data'] }));
    assert.equal(anonymous.field, '/containers/0/startup_parameters/volumes/0');
    assert.match(anonymous.reason, /anonymous volumes/);
  });

  test('network_mode: bridge, host, none, or container:<a container of this release> (by name or fully qualified name)', () => {
    const two = (mode: string) => [container({ name: 'vpn' }), container({ name: 'app', startup_parameters: { network_mode: mode } })];
    assert.equal(service(two('container:vpn')).network_mode, 'service:vpn');
    assert.equal(service(two(`container:${fullyQualifiedName('vpn', 7)}`)).network_mode, 'service:vpn');
    assert.equal(service(two('bridge')).network_mode, 'bridge');
    assert.equal(service([container()]).network_mode, undefined, "none given: the app's own network");
    assert.equal(refusal(two('container:ghost')).field, '/containers/1/startup_parameters/network_mode');
    assert.equal(refusal(two('container:app')).field, '/containers/1/startup_parameters/network_mode');
    assert.equal(refusal(two('my-net')).field, '/containers/1/startup_parameters/network_mode');
    // a cycle only the whole-target check sees, still reported on the release's field
    const cycle = [
      container({ name: 'a', startup_parameters: { network_mode: 'container:b' } }),
      container({ name: 'b', startup_parameters: { network_mode: 'container:a' } }),
    ];
    assert.doesNotThrow(() => releaseApp(release(), cycle, registries));
    const err = refusal(cycle, validateReleaseApp);
    assert.match(err.field, /^\/containers\/[01]\/startup_parameters\/network_mode$/);
    assert.match(err.reason, /cycle/);
  });

  test('the other startup parameters map to the service; bad values are refused by field', () => {
    const svc = service(
      withParams({
        command: 'node server.js',
        entrypoint: ['tini', '--'],
        labels: ['a=1', 'flag'],
        cap_add: 'NET_ADMIN, SYS_TIME',
        cap_drop: ['MKNOD'],
        devices: ['/dev/ttyUSB0', '/dev/i2c-1:/dev/i2c-1:rw'],
        working_dir: '/srv',
        user: 1000,
        mem_limit: '512M',
        stop_signal: 'SIGINT',
        stop_timeout: 30,
        privileged: false,
      }),
    );
    assert.deepEqual(svc, {
      image: 'app:v1',
      restart: 'no',
      command: 'node server.js',
      entrypoint: ['tini', '--'],
      labels: { a: '1', flag: '' },
      cap_add: ['NET_ADMIN', 'SYS_TIME'],
      cap_drop: ['MKNOD'],
      devices: ['/dev/ttyUSB0', '/dev/i2c-1:/dev/i2c-1:rw'],
      working_dir: '/srv',
      user: '1000',
      mem_limit: '512m',
      stop_signal: 'SIGINT',
      stop_grace_period: 30,
      privileged: false,
    });
    assert.equal(service(withParams({ mem_limit: 1073741824 })).mem_limit, 1073741824);
    const at = '/containers/0/startup_parameters';
    assert.equal(refusal(withParams({ mem_limit: '1k' })).field, `${at}/mem_limit`);
    assert.equal(refusal(withParams({ mem_limit: 'lots' })).field, `${at}/mem_limit`);
    assert.equal(refusal(withParams({ working_dir: 'srv' })).field, `${at}/working_dir`);
    assert.equal(refusal(withParams({ devices: ['ttyUSB0'] })).field, `${at}/devices/0`);
    assert.equal(refusal(withParams({ cap_add: ['NET ADMIN'] })).field, `${at}/cap_add/0`);
    assert.equal(refusal(withParams({ stop_signal: 'term' })).field, `${at}/stop_signal`);
    assert.equal(refusal(withParams({ labels: { '': 'x' } })).field, `${at}/labels/`);
  });
});
