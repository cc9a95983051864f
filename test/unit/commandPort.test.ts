// The commands (src/agent/commands) against a fake of their port (helpers/fakeDevice.ts): what an
// app's key may see and do through them (README, Security), and their answers, without an engine.
// The same on a real agent and engine: execute.test.ts, deviceApiLocalCommands.test.ts.
import assert from 'node:assert/strict';
import { beforeEach, describe, test } from 'node:test';
import type { KeyScope } from '../../src/agent/api/keyScope.js';
import { runCommand } from '../../src/agent/commands/registry.js';
import { NotFoundError, UnauthorizedError, ValidationError } from '../../src/shared/errors.js';
import { FakeCommandDevice } from './helpers/fakeDevice.js';

const DEVICE: KeyScope = { kind: 'device' };
const APP1: KeyScope = { kind: 'app', appId: 1 };

let device: FakeCommandDevice;
beforeEach(() => {
  device = new FakeCommandDevice();
});

const run = (command: string, scope: KeyScope, args: { arg?: unknown[]; kwarg?: Record<string, unknown> } = {}) =>
  runCommand(device, { command, ...args }, scope);

describe('docker commands', () => {
  test("docker.ps: an app's key lists its own app's containers only", async () => {
    assert.deepEqual(Object.keys((await run('docker.ps', APP1)) as object), ['web-container']);
    assert.deepEqual(Object.keys((await run('docker.ps', DEVICE)) as object), ['web-container', 'db-container', 'worker-container']);
  });

  test("docker.logs: its own app's containers; another app's is not found", async () => {
    assert.equal(await run('docker.logs', APP1, { arg: ['web'] }), 'web line 1\nweb line 2\n');
    await assert.rejects(
      run('docker.logs', APP1, { arg: ['db'] }),
      (err: Error) => err instanceof NotFoundError && /no container of app 1 is named db \(its services: web\)/.test(err.message),
    );
    await assert.rejects(run('docker.logs', APP1, { arg: ['db-container'] }), NotFoundError);
    assert.equal(await run('docker.logs', DEVICE, { arg: ['db_1'] }), 'db line\n');
    await assert.rejects(run('docker.logs', DEVICE, { arg: ['web'], kwarg: { tail: 'many' } }), ValidationError);
  });

  test("docker.restart|stop|start: through the actions, on the key's own app only", async () => {
    assert.deepEqual(await run('docker.restart', APP1, { arg: ['web'], kwarg: { force: true } }), { result: true, state: { old: 'running', new: 'running' } });
    await assert.rejects(run('docker.stop', APP1, { arg: ['worker'] }), NotFoundError);
    assert.deepEqual(device.calls, [['restartService', 1, 'web', true]]);
  });
});

describe('supervisor and state commands', () => {
  test("supervisor.purge|restart: another app's id is refused and nothing is done", async () => {
    await assert.rejects(run('supervisor.purge', APP1, { arg: [2] }), UnauthorizedError);
    await assert.rejects(run('supervisor.restart', APP1, { kwarg: { app_id: 2, force: true } }), UnauthorizedError);
    assert.deepEqual(device.calls, []);
    assert.equal(await run('supervisor.restart', APP1, { kwarg: { app_id: 1 } }), true);
    assert.deepEqual(device.calls, [['restartApp', 1, false]]);
  });

  test("supervisor.reboot {force}: an app's force covers its own app's lock only", async () => {
    assert.equal(await run('supervisor.reboot', APP1, { kwarg: { force: true } }), true);
    const [[action, force]] = device.callsOf('power') as [[string, (appId: number) => boolean]];
    assert.deepEqual([action, force(1), force(2)], ['reboot', true, false]);
  });

  test("docker.release: an app's key sees its own app, and not why the device waits (that names every app)", async () => {
    const app = (await run('docker.release', APP1, { kwarg: { force: true } })) as { comment: string; apps: object };
    assert.deepEqual([app.comment, Object.keys(app.apps)], ['applying', ['1']]);
    const all = (await run('state.sls', DEVICE, { arg: ['docker.release'] })) as { comment: string; apps: object };
    assert.deepEqual([all.comment, Object.keys(all.apps)], ['applying: app 2 holds its update lock', ['1', '2']]);
    assert.deepEqual(device.callsOf('requestUpdate'), [
      [true, APP1],
      [false, DEVICE],
    ]);
  });
});

describe("the agent's own log and facts", () => {
  test('minionutil.last_logs: the device key only; lines as AutoPi prints them', async () => {
    await assert.rejects(run('minionutil.last_logs', APP1), UnauthorizedError);
    assert.equal(await run('minionutil.last_logs', DEVICE, { kwarg: { match: '\\[error' } }), '2026-01-01T00:00:01.000Z [ERROR   ] Failed to pull image');
  });

  test('grains.items: the device facts; an engine that does not answer is said so', async () => {
    const grains = (await run('grains.items', APP1)) as Record<string, unknown>;
    assert.deepEqual([grains.uuid, grains.device_name, grains.docker_version, grains.local_mode], ['a1b2c3d4e5f6', 'fake-device', '27.0.0', false]);
    device.engineDown = new Error('connect ENOENT /var/run/docker.sock');
    assert.match(String(((await run('grains.items', DEVICE)) as Record<string, unknown>).docker_version), /^unreachable: /);
  });

  test('an unknown command or argument is a ValidationError naming it', async () => {
    await assert.rejects(run('cmd.run', DEVICE), (err: Error) => err instanceof ValidationError && /'cmd.run' is not available/.test(err.message));
    await assert.rejects(run('test.ping', DEVICE, { arg: [1] }), ValidationError);
    assert.equal(await run('test.ping', APP1), true);
  });
});
