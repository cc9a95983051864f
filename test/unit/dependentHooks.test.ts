// The pure decisions of a gateway (src/agent/dependent/hookPlan.ts): which hooks a new target owes
// the gateway app, where they go, their backoff, what an answer means, and what a state report
// carries of the dependent devices (only what changed).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  changedReports,
  DEFAULT_HOOK_ADDRESS,
  hookAddress,
  hookDelayMs,
  hookKey,
  hookOutcome,
  hookUrl,
  targetChanges,
  type DeviceRecord,
} from '../../src/agent/dependent/hookPlan.js';
import type { DependentDeviceReport, DependentTarget } from '../../src/shared/dependents.js';
import type { TargetState } from '../../src/shared/targetState.js';

const A = 'a'.repeat(32);
const B = 'b'.repeat(32);
const C = 'c'.repeat(32);

const deviceTarget = (commit: string | null, environment: Record<string, string> = {}) => ({
  id: 7,
  app_id: 5,
  name: 'blue-sun',
  device_type: 'generic-amd64',
  commit,
  environment,
  config: {},
});
const dependent = (devices: DependentTarget['devices'], appCommit: string | null = 'c2'): DependentTarget => ({
  apps: {
    5: {
      name: 'edge',
      parent_app: 1,
      device_type: 'generic-amd64',
      release: appCommit ? { id: 2, commit: appCommit, image: 'reg/edge:2' } : null,
      config: {},
    },
  },
  devices,
});
const record = (uuid: string, over: Partial<DeviceRecord> = {}): DeviceRecord => ({ uuid, appId: 5, synced: true, seen: true, hooked: null, ...over });

describe('targetChanges', () => {
  test('a new device of the target is added and hooked with its commit and environment', () => {
    const c = targetChanges([], dependent({ [A]: deviceTarget('c2', { LED: 'on' }) }));
    assert.deepEqual(c.added, [A]);
    assert.deepEqual(c.updates, [{ uuid: A, body: { commit: 'c2', environment: { LED: 'on' } }, key: hookKey({ commit: 'c2', environment: { LED: 'on' } }) }]);
  });

  test('no hook when the target did not change since the last one; one when commit or environment did', () => {
    const hooked = hookKey({ commit: 'c2', environment: {} });
    assert.deepEqual(targetChanges([record(A, { hooked })], dependent({ [A]: deviceTarget('c2') })).updates, []);
    assert.equal(targetChanges([record(A, { hooked })], dependent({ [A]: deviceTarget('c1') })).updates[0]!.body.commit, 'c1', 'pinned to an older commit');
    assert.deepEqual(targetChanges([record(A, { hooked })], dependent({ [A]: deviceTarget('c2', { X: '1' }) })).updates[0]!.body.environment, { X: '1' });
  });

  test('a device without a commit (no release yet) gets no hook', () => {
    assert.deepEqual(targetChanges([], dependent({ [A]: deviceTarget(null) }, null)).updates, []);
  });

  test('a device seen in a target and gone from it was deleted; one never seen, or provisioned offline, is not', () => {
    const stored = [record(A), record(B, { seen: false }), record(C, { synced: false, seen: false })];
    const c = targetChanges(stored, dependent({}));
    assert.deepEqual(c.deleted, [A]);
    // the target says one never seen was deleted (provisioned and deleted at once): it goes too
    assert.deepEqual(targetChanges(stored, { ...dependent({}), deleted: [B, 'f'.repeat(32)] }).deleted, [A, B]);
    // the device provisioned offline gets its app's newest release
    assert.deepEqual(
      c.updates.map((u) => [u.uuid, u.body.commit]),
      [[C, 'c2']],
    );
  });
});

describe('hook addresses', () => {
  const target = (env?: Record<string, string>) =>
    ({
      apps: { 1: { name: 'gw', release: { id: 1, commit: 'x', services: { main: { image: 'gw', ...(env ? { environment: env } : {}) } } } } },
    }) as TargetState;

  test("balena's default, or what the gateway app's services set", () => {
    assert.equal(hookAddress(target(), 1), DEFAULT_HOOK_ADDRESS);
    assert.equal(hookAddress(target({ BALENA_DEPENDENT_DEVICES_HOOK_ADDRESS: 'http://127.0.0.1:9999/hooks/' }), 1), 'http://127.0.0.1:9999/hooks/');
    assert.equal(hookAddress(target({ BALENA_DEPENDENT_DEVICES_HOOK_ADDRESS: 'http://x/' }), 2), DEFAULT_HOOK_ADDRESS, "another app's setting does not count");
  });

  test('the uuid is appended; 0.0.0.0 is the host loopback, where the gateway app publishes its port', () => {
    assert.equal(hookUrl(DEFAULT_HOOK_ADDRESS, A, 'update'), `http://127.0.0.1:1337/v1/devices/${A}`);
    assert.equal(hookUrl(DEFAULT_HOOK_ADDRESS, A, 'restart'), `http://127.0.0.1:1337/v1/devices/${A}/restart`);
    assert.equal(hookUrl('http://10.0.0.2:80/hooks', A, 'delete'), `http://10.0.0.2/hooks/${A}`);
  });
});

describe('hook answers and backoff', () => {
  test('200 ends a hook; 202 to an update repeats until the device reports the commit; errors are retried', () => {
    assert.equal(hookOutcome('update', 200, null, 'c2'), 'done');
    assert.equal(hookOutcome('update', 202, 'c1', 'c2'), 'repeat');
    assert.equal(hookOutcome('update', 202, 'c2', 'c2'), 'done');
    assert.equal(hookOutcome('update', 500, null, 'c2'), 'failed');
    assert.equal(hookOutcome('update', undefined, null, 'c2'), 'failed', 'no answer (timeout, refused)');
    assert.equal(hookOutcome('delete', 202, null), 'done');
    assert.equal(hookOutcome('restart', 404, null), 'failed');
  });

  test('the wait doubles from the base and is capped', () => {
    const b = { baseMs: 1000, maxMs: 8000 };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 50].map((n) => hookDelayMs(n, b)),
      [1000, 2000, 4000, 8000, 8000, 8000],
    );
  });
});

describe('changedReports', () => {
  test('the first report carries everything; later ones only the fields that changed, per device', () => {
    const now = new Map<string, DependentDeviceReport>([
      [A, { status: 'Idle', commit: 'c1', is_online: true }],
      [B, { status: 'Idle' }],
    ]);
    const first = changedReports(now, new Map());
    assert.deepEqual(first.patch, { [A]: { status: 'Idle', commit: 'c1', is_online: true }, [B]: { status: 'Idle' } });
    now.set(A, { status: 'Idle', commit: 'c2', is_online: true });
    const second = changedReports(now, first.sent);
    assert.deepEqual(second.patch, { [A]: { commit: 'c2' } });
    assert.deepEqual(changedReports(now, second.sent).patch, {}, 'nothing changed: nothing sent');
  });
});
