// The v2 local-mode target the balena CLI posts (`balena push <device>`) → Bosun's target state.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromBalenaLocalTarget } from '../../src/shared/balenaTarget.js';
import type { ValidationError } from '../../src/shared/errors.js';
import { validateTargetState } from '../../src/shared/validateTarget.js';

/** The shape the balena CLI sends (issue 7, measured with balena-cli 22.5.5). */
const cliBody = () => ({
  local: {
    name: 'dev-device',
    config: { SUPERVISOR_LOCAL_MODE: '1' },
    apps: {
      '1': {
        name: 'localapp',
        commit: 'deadbeef',
        releaseId: 1,
        services: {
          '1': {
            serviceName: 'first',
            imageId: 1,
            image: 'local_image_first:latest',
            environment: { GREETING: 'hello' },
            labels: { 'io.balena.features.supervisor-api': '1' },
            volumes: ['data:/data'],
            command: null,
            networks: { default: null },
            running: true,
          },
          '2': {
            serviceName: 'second',
            imageId: 2,
            image: 'local_image_second:latest',
            environment: {},
            labels: {},
            depends_on: ['first'],
            networkMode: 'bridge',
            restart: 'always',
            command: null,
            networks: { default: null },
          },
        },
        volumes: { data: {} },
        networks: { default: { ipam: {} } },
      },
    },
  },
});

describe('balena local target', () => {
  test('converts the CLI body into a valid Bosun target, keyed by service name', () => {
    const dropped: string[] = [];
    const target = validateTargetState(fromBalenaLocalTarget(cliBody(), dropped));
    const app = target.apps['1']!;
    assert.equal(app.name, 'localapp');
    assert.equal(app.uuid, '1');
    assert.equal(app.release.commit, 'deadbeef');
    assert.deepEqual(Object.keys(app.release.services), ['first', 'second']);
    const first = app.release.services.first!;
    assert.equal(first.image, 'local_image_first:latest');
    assert.deepEqual(first.environment, { GREETING: 'hello' });
    assert.deepEqual(first.volumes, ['data:/data']);
    assert.deepEqual(first.networks, ['default']);
    assert.equal(first.command, undefined, 'command: null means the image CMD');
    assert.equal(app.release.services.second!.network_mode, 'bridge', 'camelCase keys are accepted');
    assert.deepEqual(app.release.services.second!.depends_on, ['first']);
    assert.deepEqual(app.release.networks, { default: {} });
    assert.equal(target.name, 'dev-device');
    assert.deepEqual(dropped, []);
  });

  test('the body balena-cli 22.5.5 really posts (recorded) is accepted as it is', async () => {
    const fs = await import('node:fs/promises');
    const body = JSON.parse(await fs.readFile(new URL('../fixtures/balena-cli/local-target-state.json', import.meta.url), 'utf8')) as unknown;
    const dropped: string[] = [];
    const target = validateTargetState(fromBalenaLocalTarget(body, dropped));
    const app = Object.values(target.apps)[0]!;
    assert.equal(typeof app.release.id, 'number', 'releaseId comes as a string');
    assert.deepEqual(Object.keys(app.release.services).sort(), ['first', 'second']);
    assert.equal(app.release.services.first!.image, 'local_first');
    assert.deepEqual(app.release.services.second!.depends_on, ['first']);
    assert.deepEqual(dropped, []);
  });

  test('unsupported compose keys are dropped and named', () => {
    const body = cliBody();
    (body.local.apps['1'].services['1'] as Record<string, unknown>).tty = true;
    const dropped: string[] = [];
    const target = fromBalenaLocalTarget(body, dropped);
    assert.deepEqual(dropped, ['first.tty']);
    assert.ok(!('tty' in target.apps['1']!.release.services.first!));
  });

  test('a body without `local` or a service without a name is rejected naming the field', () => {
    assert.throws(
      () => fromBalenaLocalTarget({ apps: {} }),
      (e: ValidationError) => e.field === '/local',
    );
    const body = cliBody();
    delete (body.local.apps['1'].services['2'] as Record<string, unknown>).serviceName;
    assert.throws(
      () => fromBalenaLocalTarget(body),
      (e: ValidationError) => e.field === '/local/apps/1/services/2/serviceName',
    );
  });
});
