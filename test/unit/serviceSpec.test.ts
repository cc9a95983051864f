import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceTarget, TargetState } from '../../src/shared/targetState.js';
import { findImage, normaliseImageRef, parseImageRef, repositoryOf, withTag, type EngineImage } from '../../src/agent/engine/imageRef.js';
import { DEFAULT_HANDOVER_TIMEOUT_MS, describeConfigChange, durationNs, redactConfig, type ServiceSpec } from '../../src/agent/reconciler/serviceSpec.js';
import { LOCK_ROOT, app, desired, device, spec, specContext, target } from './helpers/planFixtures.js';

/** The spec of service `web` (app 1) for the given service target. */
const web = (svc: Partial<ServiceTarget>, extra: Omit<Partial<TargetState>, 'apps'> = {}, ctx = specContext): ServiceSpec =>
  spec(desired(target({ 1: app({ web: { image: 'nginx:1.25', ...svc } }, { volumes: { data: {} }, networks: { backend: {} } }) }, extra), ctx), 'web');

describe('hash', () => {
  test('the same target gives the same spec and hash', () => {
    const a = web({ environment: { A: '1', B: '2' }, ports: ['80'] });
    assert.deepEqual(web({ environment: { A: '1', B: '2' }, ports: ['80'] }), a);
    assert.match(a.hash, /^[0-9a-f]{64}$/);
  });

  test('key order and list order of sorted fields do not matter', () => {
    assert.equal(
      web({ environment: { B: '2', A: '1' }, cap_add: ['SYS_TIME', 'NET_ADMIN'] }).hash,
      web({ environment: { A: '1', B: '2' }, cap_add: ['NET_ADMIN', 'SYS_TIME'] }).hash,
    );
  });

  test('an environment change changes the hash', () => {
    assert.notEqual(web({ environment: { A: '1' } }).hash, web({ environment: { A: '2' } }).hash);
  });

  test('release, commit, running and update settings are not part of the config', () => {
    const base = web({});
    const other = spec(
      desired(
        target({
          1: app(
            { web: { image: 'nginx:1.25', running: false, update_strategy: 'hand-over', handover_timeout: 5 } },
            { id: 9, commit: 'other', volumes: { data: {} }, networks: { backend: {} } },
          ),
        }),
      ),
      'web',
    );
    assert.equal(other.hash, base.hash);
  });

  test('a device rename keeps the hash: the name at init is a create-only variable', () => {
    const before = web({});
    const renamed = web({}, {}, { ...specContext, device: { ...device, name: 'pantry' } });
    assert.equal(renamed.hash, before.hash);
    assert.deepEqual(before.createEnv, {
      BALENA_DEVICE_NAME_AT_INIT: 'kitchen',
      RESIN_DEVICE_NAME_AT_INIT: 'kitchen',
      BOSUN_DEVICE_NAME_AT_INIT: 'kitchen',
    });
    assert.equal(renamed.createEnv.BALENA_DEVICE_NAME_AT_INIT, 'pantry');
    assert.ok(!Object.keys(before.config.environment).some((k) => k.includes('DEVICE_NAME')));
  });
});

describe('environment', () => {
  test('injects balena-compatible variables in three spellings', () => {
    const env = web({}).config.environment;
    for (const prefix of ['BALENA', 'RESIN', 'BOSUN']) {
      assert.equal(env[`${prefix}_APP_ID`], '1');
      assert.equal(env[`${prefix}_APP_UUID`], '1');
      assert.equal(env[`${prefix}_APP_NAME`], 'myapp');
      assert.equal(env[`${prefix}_SERVICE_NAME`], 'web');
      assert.equal(env[`${prefix}_DEVICE_UUID`], 'd3v1c3');
      assert.equal(env[`${prefix}_DEVICE_TYPE`], 'raspberrypi4-64');
      assert.equal(env[`${prefix}_DEVICE_ARCH`], 'aarch64');
      assert.equal(env[`${prefix}_APP_LOCK_PATH`], '/tmp/balena/updates.lock');
      assert.equal(env[`${prefix}_SERVICE_HANDOVER_COMPLETE_PATH`], '/tmp/balena/handover-complete');
      assert.equal(env[prefix], '1');
    }
    assert.equal(env.RESIN_SERVICE_KILL_ME_PATH, '/tmp/balena/handover-complete');
    assert.ok(!('BALENA_SUPERVISOR_ADDRESS' in env) && !('BALENA_HOST_OS_VERSION' in env));
  });

  test('the app uuid and OS version are passed when known', () => {
    const d = desired(target({ 1: { ...app({ web: { image: 'nginx' } }), uuid: 'u-1' } }), {
      ...specContext,
      device: { ...device, osVersion: 'balenaOS 5.1' },
    });
    assert.equal(spec(d, 'web').config.environment.BALENA_APP_UUID, 'u-1');
    assert.equal(spec(d, 'web').appUuid, 'u-1');
    assert.equal(spec(d, 'web').config.environment.RESIN_HOST_OS_VERSION, 'balenaOS 5.1');
  });

  test('the device API address depends on the network mode; the key on the app', () => {
    const api = { port: 48484, keyForApp: (id: number) => `key-${id}` };
    const bridged = web({}, {}, { ...specContext, api }).config.environment;
    // on an app network the host is that network's gateway, added at create time (not hashed)
    assert.ok(!('BALENA_SUPERVISOR_ADDRESS' in bridged) && !('BALENA_SUPERVISOR_HOST' in bridged));
    assert.equal(bridged.BALENA_SUPERVISOR_PORT, '48484');
    assert.equal(bridged.BALENA_SUPERVISOR_API_KEY, 'key-1');
    const host = web({ network_mode: 'host' }, {}, { ...specContext, api }).config.environment;
    assert.equal(host.RESIN_SUPERVISOR_ADDRESS, 'http://127.0.0.1:48484');
  });

  test('user environment overrides injected variables', () => {
    const env = web({ environment: { BALENA_APP_ID: 'mine', FOO: 'bar' } }).config.environment;
    assert.equal(env.BALENA_APP_ID, 'mine');
    assert.equal(env.RESIN_APP_ID, '1');
    assert.equal(env.FOO, 'bar');
  });
});

describe('container config', () => {
  test('lock folders are bound at /tmp/balena and /tmp/resin; host binds and named volumes are split', () => {
    const c = web({ volumes: ['data:/data:ro', '/srv/www:/www', '/etc/localtime:/etc/localtime:ro'] }).config;
    assert.deepEqual(c.binds, ['/etc/localtime:/etc/localtime:ro', '/srv/www:/www', `${LOCK_ROOT}/1/web:/tmp/balena`, `${LOCK_ROOT}/1/web:/tmp/resin`]);
    assert.deepEqual(c.volumes, ['1_data:/data:ro']);
  });

  test('ports are normalised to [ip:]host:container/proto and sorted', () => {
    const c = web({ ports: ['8080:80', '80', '0.0.0.0:8443:443', '127.0.0.1:9000:9000/udp', '[::1]:53:53/udp', '127.0.0.1::7000', '443/tcp'] }).config;
    assert.deepEqual(c.ports, [
      '0.0.0.0:8443:443/tcp',
      '127.0.0.1:9000:9000/udp',
      '127.0.0.1::7000/tcp',
      '8080:80/tcp',
      ':443/tcp',
      ':80/tcp',
      '[::1]:53:53/udp',
    ]);
  });

  test('memory limits and cpus', () => {
    assert.equal(web({ mem_limit: '512m' }).config.memory, 512 * 1024 ** 2);
    assert.equal(web({ mem_limit: '2g' }).config.memory, 2 * 1024 ** 3);
    assert.equal(web({ mem_limit: '7000k' }).config.memory, 7000 * 1024);
    assert.equal(web({ mem_limit: '7000000' }).config.memory, 7_000_000);
    assert.equal(web({ mem_limit: 8_388_608 }).config.memory, 8_388_608);
    assert.equal(web({}).config.memory, 0);
    assert.equal(web({ cpus: 0.5 }).config.nanoCpus, 500_000_000);
    assert.equal(web({ cpus: 1.25 }).config.nanoCpus, 1_250_000_000);
    assert.equal(web({}).config.nanoCpus, 0);
  });

  test('command and entrypoint strings are split like a shell would', () => {
    assert.deepEqual(web({ command: 'nginx -g "daemon off;"' }).config.command, ['nginx', '-g', 'daemon off;']);
    assert.deepEqual(web({ command: "sh -c 'echo $HOME && sleep 1'" }).config.command, ['sh', '-c', 'echo $HOME && sleep 1']);
    assert.deepEqual(web({ command: 'ls *.txt' }).config.command, ['ls', '*.txt']);
    assert.deepEqual(web({ command: 'serve --port 80 # the default' }).config.command, ['serve', '--port', '80']);
    assert.deepEqual(web({ command: ['a b', 'c'] }).config.command, ['a b', 'c']);
    assert.equal(web({ command: null }).config.command, null);
    assert.equal(web({}).config.command, null);
    assert.deepEqual(web({ entrypoint: '/bin/tini --' }).config.entrypoint, ['/bin/tini', '--']);
  });

  test('networks: the app default unless given; none for host or service network modes', () => {
    assert.deepEqual(web({}).config.networks, ['1_default']);
    assert.equal(web({}).config.networkMode, 'app');
    assert.deepEqual(web({ networks: ['backend', 'default'] }).config.networks, ['1_backend', '1_default']);
    assert.deepEqual(web({ network_mode: 'host' }).config.networks, []);
    assert.equal(web({ network_mode: 'host' }).config.networkMode, 'host');
  });

  test('defaults and simple fields', () => {
    const c = web({}).config;
    assert.deepEqual(
      [c.image, c.restart, c.privileged, c.stopTimeout, c.stopSignal, c.healthcheck, c.workingDir, c.user, c.labels],
      ['library/nginx:1.25', 'always', false, 10, null, null, null, null, {}],
    );
    const d = web({ restart: 'no', privileged: true, stop_grace_period: 30, stop_signal: 'SIGINT', working_dir: '/w', user: '1000' }).config;
    assert.deepEqual([d.restart, d.privileged, d.stopTimeout, d.stopSignal, d.workingDir, d.user], ['no', true, 30, 'SIGINT', '/w', '1000']);
  });

  test('devices get a container path and permissions', () => {
    assert.deepEqual(web({ devices: ['/dev/ttyUSB0', '/dev/i2c-1:/dev/i2c-0', '/dev/snd:/dev/snd:r', '/dev/gpiomem:rw'] }).config.devices, [
      '/dev/gpiomem:/dev/gpiomem:rw',
      '/dev/i2c-1:/dev/i2c-0:rwm',
      '/dev/snd:/dev/snd:r',
      '/dev/ttyUSB0:/dev/ttyUSB0:rwm',
    ]);
  });

  test('healthchecks: a string test runs in a shell; durations become nanoseconds', () => {
    assert.deepEqual(web({ healthcheck: { test: 'curl -f localhost', interval: '1m30s', timeout: 5000, retries: 2 } }).config.healthcheck, {
      test: ['CMD-SHELL', 'curl -f localhost'],
      intervalNs: 90e9,
      timeoutNs: 5e9,
      startPeriodNs: 0,
      retries: 2,
    });
    assert.deepEqual(web({ healthcheck: { test: ['CMD', 'true'] } }).config.healthcheck, {
      test: ['CMD', 'true'],
      intervalNs: 30e9,
      timeoutNs: 30e9,
      startPeriodNs: 0,
      retries: 3,
    });
    assert.equal(durationNs('1h2m3s4ms', 0), 3723e9 + 4e6);
    assert.equal(durationNs(undefined, 7), 7);
  });
});

describe('update settings, images, registries', () => {
  test('strategy and handover timeout: fields, else balena labels, else defaults', () => {
    const labels = { 'io.balena.update.strategy': 'kill-then-download', 'io.balena.update.handover-timeout': '5000' };
    assert.deepEqual(pick(web({ labels })), ['kill-then-download', 5000]);
    assert.deepEqual(pick(web({ labels, update_strategy: 'hand-over', handover_timeout: 100 })), ['hand-over', 100]);
    assert.deepEqual(pick(web({ labels: { 'io.balena.update.strategy': 'bogus', 'io.balena.update.handover-timeout': 'soon' } })), [
      'download-then-kill',
      DEFAULT_HANDOVER_TIMEOUT_MS,
    ]);
    assert.deepEqual(pick(web({})), ['download-then-kill', 60_000]);
  });

  test('images include required tags of the same repository', () => {
    assert.deepEqual(web({ image: 'registry.example.com/acme/api:1.0', required_tags: ['arm64', 'debug'] }).images, [
      'registry.example.com/acme/api:1.0',
      'registry.example.com/acme/api:arm64',
      'registry.example.com/acme/api:debug',
    ]);
    assert.deepEqual(web({ image: 'busybox' }).images, ['library/busybox:latest']);
  });

  test('dependencies include the network_mode service', () => {
    const d = desired(
      target({ 1: app({ vpn: { image: 'vpn' }, db: { image: 'db' }, web: { image: 'nginx', depends_on: ['db'], network_mode: 'service:vpn' } }) }),
    );
    assert.deepEqual(spec(d, 'web').dependsOn, ['db', 'vpn']);
    assert.equal(spec(d, 'web').config.networkMode, 'service:vpn');
  });

  test('registry credentials: explicit key, else matched by image host (scheme and path ignored)', () => {
    const acme = { url: 'https://registry.example.com:5000/v2/', username: 'a', password: 'x' };
    const other = { url: 'other.example.com', username: 'o', password: 'y' };
    const registries = { acme, other };
    assert.deepEqual(web({ image: 'registry.example.com:5000/acme/api:1' }, { registries }).registry, acme);
    assert.deepEqual(web({ image: 'registry.example.com:5000/acme/api:1', registry: 'other' }, { registries }).registry, other);
    assert.equal(web({ image: 'registry.example.com/acme/api:1' }, { registries }).registry, undefined);
    assert.equal(web({ image: 'nginx' }, { registries }).registry, undefined);
    assert.ok(!('registry' in web({ image: 'nginx' }, { registries })));
    const hub = { url: 'docker.io', username: 'h', password: 'z' };
    assert.deepEqual(web({ image: 'acme/private:1' }, { registries: { hub } }).registry, hub);
  });

  test('the desired state lists every service of every app', () => {
    const t = target({ 1: app({ a: { image: 'x' }, b: { image: 'y' } }), 2: app({ c: { image: 'z' } }) });
    const specs = [...desired(t).apps.values()].flatMap((a) => [...a.services.values()]);
    assert.deepEqual(
      specs.map((s) => `${s.appId}/${s.serviceName}`),
      ['1/a', '1/b', '2/c'],
    );
  });
});

describe('desired state', () => {
  test('every app gets its default network plus declared ones, and its volumes, with engine names', () => {
    const d = desired(target({ 5: app({ web: { image: 'nginx' } }, { volumes: { data: { driver: 'local' } }, networks: { back: { internal: true } } }) }));
    const a = d.apps.get(5)!;
    assert.deepEqual([a.appId, a.appUuid, a.name, a.releaseId, a.commit], [5, '5', 'myapp', 1, 'c0ffee']);
    assert.deepEqual(
      a.networks.map((n) => [n.name, n.engineName, n.config]),
      [
        ['default', '5_default', {}],
        ['back', '5_back', { internal: true }],
      ],
    );
    assert.notEqual(a.networks[0]!.hash, a.networks[1]!.hash);
    assert.deepEqual(a.volumes, [{ appId: 5, name: 'data', engineName: '5_data', config: { driver: 'local' } }]);
  });

  test('a network hash follows its config only', () => {
    const hashOf = (back: object) => desired(target({ 1: app({ web: { image: 'nginx' } }, { networks: { back } }) })).apps.get(1)!.networks[1]!.hash;
    assert.equal(hashOf({ internal: true, driver: 'bridge' }), hashOf({ driver: 'bridge', internal: true }));
    assert.notEqual(hashOf({ internal: true }), hashOf({ internal: false }));
  });
});

describe('explaining a change', () => {
  test('redaction replaces env values with digests', () => {
    const r = redactConfig(web({ environment: { TOKEN: 'hunter2' } }).config);
    assert.match(r.environment.TOKEN!, /^[0-9a-f]{12}$/);
    assert.ok(!JSON.stringify(r).includes('hunter2'));
  });

  test('lists changed fields and env names, never env values', () => {
    const from = redactConfig(web({ environment: { A: 'secret-1', B: 'x' }, ports: ['80'] }).config);
    const to = redactConfig(web({ image: 'nginx:1.26', environment: { A: 'secret-2', C: 'y' }, ports: ['81'] }).config);
    const changes = describeConfigChange(from, to);
    assert.deepEqual(changes, ['image (library/nginx:1.25 → library/nginx:1.26)', 'environment (A changed, C added, B removed)', 'ports']);
    assert.ok(!changes.join().includes('secret'));
    assert.deepEqual(describeConfigChange(undefined, to), ['configuration (previous one unknown)']);
    assert.deepEqual(describeConfigChange(from, from), []);
  });
});

describe('imageRef', () => {
  test('parses references into registry, repository, tag and digest', () => {
    assert.deepEqual(parseImageRef('busybox'), { registry: '', repository: 'library/busybox', tag: 'latest' });
    assert.deepEqual(parseImageRef('acme/app:2'), { registry: '', repository: 'acme/app', tag: '2' });
    assert.deepEqual(parseImageRef('localhost:5000/app'), { registry: 'localhost:5000', repository: 'app', tag: 'latest' });
    assert.deepEqual(parseImageRef('registry.example.com:5000/team/app:1.2'), { registry: 'registry.example.com:5000', repository: 'team/app', tag: '1.2' });
    assert.deepEqual(parseImageRef('busybox@sha256:abc'), { registry: '', repository: 'library/busybox', digest: 'sha256:abc' });
    assert.deepEqual(parseImageRef('ghcr.io/o/app:1@sha256:abc'), { registry: 'ghcr.io', repository: 'o/app', tag: '1', digest: 'sha256:abc' });
  });

  test('Docker Hub spellings normalise to one form', () => {
    for (const ref of [
      'busybox',
      'busybox:latest',
      'library/busybox',
      'docker.io/busybox',
      'docker.io/library/busybox:latest',
      'index.docker.io/library/busybox',
      'registry-1.docker.io/busybox',
    ]) {
      assert.equal(normaliseImageRef(ref), 'library/busybox:latest', ref);
    }
    assert.equal(normaliseImageRef('docker.io/library/busybox:latest'), normaliseImageRef('busybox'));
    assert.notEqual(normaliseImageRef('busybox:1.36'), normaliseImageRef('busybox'));
    assert.equal(normaliseImageRef('ghcr.io/o/app@sha256:abc'), 'ghcr.io/o/app@sha256:abc');
    assert.equal(repositoryOf('ghcr.io/o/app:1'), 'ghcr.io/o/app');
    assert.equal(withTag('busybox:1.36', 'musl'), 'library/busybox:musl');
    assert.equal(withTag('ghcr.io/o/app@sha256:abc', 'arm64'), 'ghcr.io/o/app:arm64');
  });

  const images: EngineImage[] = [
    { id: 'sha256:bb', repoTags: ['busybox:latest', 'busybox:1.36'], repoDigests: ['busybox@sha256:b0'] },
    { id: 'sha256:gh', repoTags: [], repoDigests: ['ghcr.io/o/app@sha256:a1'] },
    { id: 'sha256:none', repoTags: ['<none>:<none>'], repoDigests: [] },
  ];

  test('findImage by tag, in any spelling', () => {
    assert.equal(findImage(images, 'docker.io/library/busybox')?.id, 'sha256:bb');
    assert.equal(findImage(images, 'library/busybox:1.36')?.id, 'sha256:bb');
    assert.equal(findImage(images, 'busybox:1.37'), undefined);
    assert.equal(findImage(images, 'ghcr.io/o/app:latest'), undefined);
  });

  test('findImage by digest matches digest and repository, ignoring any tag', () => {
    assert.equal(findImage(images, 'ghcr.io/o/app@sha256:a1')?.id, 'sha256:gh');
    assert.equal(findImage(images, 'ghcr.io/o/app:9@sha256:a1')?.id, 'sha256:gh');
    assert.equal(findImage(images, 'docker.io/library/busybox@sha256:b0')?.id, 'sha256:bb');
    assert.equal(findImage(images, 'ghcr.io/o/other@sha256:a1'), undefined);
    assert.equal(findImage(images, 'busybox:latest@sha256:ffff'), undefined);
  });
});

function pick(s: ServiceSpec): [string, number] {
  return [s.strategy, s.handoverTimeoutMs];
}
