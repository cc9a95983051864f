// Has an applied release settled (src/agent/state/settle.ts)? Each service's container as an
// inspect shows it → settled, settling (and when to look again) or failed with the reason.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  appSettle,
  failureText,
  HEALTH_RECHECK_MS,
  lastLines,
  LAST_LINES_BYTES,
  serviceSettle,
  type ContainerRun,
  type ServiceSettle,
} from '../../src/agent/state/settle.js';

const SETTLE = 30_000;
const now = 1_000_000;
const run = (over: Partial<ContainerRun> = {}): ContainerRun => ({
  status: 'running',
  exitCode: 0,
  oomKilled: false,
  restartCount: 0,
  startedAt: now - 5000,
  health: undefined,
  healthOutput: undefined,
  ...over,
});

describe('serviceSettle', () => {
  test('running: settling until it ran the settle period, then settled', () => {
    assert.deepEqual(serviceSettle(run(), now, SETTLE), { state: 'settling', recheckAt: now - 5000 + SETTLE });
    assert.deepEqual(serviceSettle(run({ startedAt: now - SETTLE }), now, SETTLE), { state: 'settled' });
  });

  test('a crash loop fails with the exit code and the restarts', () => {
    assert.deepEqual(serviceSettle(run({ status: 'restarting', exitCode: 1, restartCount: 3 }), now, SETTLE), {
      state: 'failed',
      reason: 'exited with code 1, restarted 3 times',
      recheckAt: undefined,
    });
    assert.deepEqual(serviceSettle(run({ status: 'restarting', exitCode: 137, oomKilled: true, restartCount: 1 }), now, SETTLE), {
      state: 'failed',
      reason: 'exited with code 137 (out of memory), restarted 1 time',
      recheckAt: undefined,
    });
  });

  test('running again after a restart: failed until it runs the whole period, then settled', () => {
    const again = run({ restartCount: 2, startedAt: now - 4000 });
    assert.deepEqual(serviceSettle(again, now, SETTLE), {
      state: 'failed',
      reason: 'restarted 2 times, running again for 4 s',
      recheckAt: now - 4000 + SETTLE,
    });
    assert.deepEqual(serviceSettle(again, now - 4000 + SETTLE, SETTLE), { state: 'settled' });
    // the engine's start time a moment after the agent's clock reading: never a negative duration
    const justNow = run({ restartCount: 1, startedAt: now + 800 });
    assert.equal((serviceSettle(justNow, now, SETTLE) as { reason: string }).reason, 'restarted 1 time, running again for 0 s');
  });

  test('exited: with an error it failed; with 0 (and not restarted by its policy) it ran to completion', () => {
    assert.deepEqual(serviceSettle(run({ status: 'exited', exitCode: 2 }), now, SETTLE), {
      state: 'failed',
      reason: 'exited with code 2',
      recheckAt: undefined,
    });
    assert.deepEqual(serviceSettle(run({ status: 'exited', exitCode: 0 }), now, SETTLE), { state: 'settled' });
    assert.equal(serviceSettle(run({ status: 'exited', exitCode: 0, oomKilled: true }), now, SETTLE).state, 'failed');
    assert.deepEqual(serviceSettle(run({ status: 'dead' }), now, SETTLE), { state: 'failed', reason: 'the container is dead', recheckAt: undefined });
  });

  test('healthchecks: settled only when healthy; unhealthy fails with what the check said', () => {
    const long = now - SETTLE - 1;
    assert.deepEqual(serviceSettle(run({ startedAt: long, health: 'healthy' }), now, SETTLE), { state: 'settled' });
    assert.deepEqual(serviceSettle(run({ startedAt: long, health: 'starting' }), now, SETTLE), { state: 'settling', recheckAt: now + HEALTH_RECHECK_MS });
    assert.equal(serviceSettle(run({ health: 'healthy' }), now, SETTLE).state, 'settling', 'healthy, but not for the settle period yet');
    const sick = serviceSettle(run({ startedAt: long, health: 'unhealthy', healthOutput: ' connection refused\n' }), now, SETTLE);
    assert.equal(sick.state, 'failed');
    assert.equal((sick as { reason: string }).reason, 'unhealthy (healthcheck: connection refused)');
  });

  test('created or being removed: settling, with nothing to wait for but the reconciler', () => {
    assert.deepEqual(serviceSettle(run({ status: 'created', startedAt: 0 }), now, SETTLE), { state: 'settling', recheckAt: undefined });
  });
});

describe('appSettle', () => {
  const settled: ServiceSettle = { state: 'settled' };
  test('settled once every service is; else settling, rechecked at the earliest time; a failure wins', () => {
    assert.deepEqual(
      appSettle(
        new Map([
          ['a', settled],
          ['b', settled],
        ]),
      ),
      { state: 'settled', failures: new Map(), recheckAt: undefined },
    );
    assert.deepEqual(appSettle(new Map()), { state: 'settled', failures: new Map(), recheckAt: undefined }, 'nothing to run');
    const settling = appSettle(
      new Map<string, ServiceSettle>([
        ['a', { state: 'settling', recheckAt: 9 }],
        ['b', { state: 'settling', recheckAt: 5 }],
        ['c', settled],
      ]),
    );
    assert.deepEqual(settling, { state: 'settling', failures: new Map(), recheckAt: 5 });
    const failed = appSettle(
      new Map<string, ServiceSettle>([
        ['a', { state: 'failed', reason: 'exited with code 1', recheckAt: undefined }],
        ['b', { state: 'settling', recheckAt: 7 }],
      ]),
    );
    assert.deepEqual(failed, { state: 'failed', failures: new Map([['a', 'exited with code 1']]), recheckAt: 7 });
  });
});

describe('last lines', () => {
  test('the newest 10 non-empty lines, at most 2 KB, cut at the front on a character boundary', () => {
    const text = Array.from({ length: 15 }, (_, i) => `line ${i + 1}`).join('\n') + '\n\n';
    assert.equal(lastLines(text), Array.from({ length: 10 }, (_, i) => `line ${i + 6}`).join('\n'));
    const long = lastLines(`start\n${'é'.repeat(3000)}`);
    assert.ok(Buffer.byteLength(long) <= LAST_LINES_BYTES, `${Buffer.byteLength(long)} bytes`);
    assert.match(long, /^…é+$/);
    assert.equal(lastLines(''), '');
  });

  test('the error text: why, then what it printed', () => {
    assert.equal(failureText('exited with code 1', 'boom'), 'exited with code 1; last lines:\nboom');
    assert.equal(failureText('exited with code 1', ''), 'exited with code 1');
  });
});
