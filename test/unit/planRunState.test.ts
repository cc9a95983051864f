// The planner and containers' health and run state: dead and duplicate containers, `running: false`,
// restarting what the agent stopped, and a failing service's backoff.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { plan } from '../../src/agent/reconciler/plan.js';
import {
  NOW,
  applied,
  container,
  containersOf,
  context,
  convergedState,
  desired,
  held,
  networksOf,
  only,
  reasons,
  show,
  spec,
  stack,
  state,
  target,
  without,
} from './helpers/planFixtures.js';

describe('container health', () => {
  const d = desired(stack());

  test('a dead container is removed without the lock, and its service recreated', () => {
    const cur = convergedState(d, { containers: containersOf(d).map((c) => (c.id === 'web-1' ? { ...c, state: 'dead' as const } : c)) });
    const steps = plan(cur, d, context());
    assert.deepEqual(show(steps), ['kill web web-1', 'create web start']);
    assert.deepEqual(only(steps, 'kill')[0], { action: 'kill', appId: 1, serviceName: 'web', containerId: 'web-1', timeout: 0, reason: 'container is dead' });
  });

  test('a dead container of a removed app is removed without the lock too', () => {
    const cur = state({ containers: [container(spec(d, 'web'), { state: 'dead' })], networks: networksOf(d) });
    assert.deepEqual(show(plan(cur, desired(target({})), context())), ['kill web web-1']);
  });

  test('of duplicate current containers the newest stays and the older ones go', () => {
    const web = spec(d, 'web');
    const dupes = [container(web, { id: 'web-old', createdAt: NOW - 7_200_000 }), container(web, { id: 'web-new' })];
    const cur = convergedState(d, { containers: [...containersOf(d).filter((c) => c.id !== 'web-1'), ...dupes] });
    assert.deepEqual(show(plan(cur, d, context())), ['takeLock 1']);
    const steps = plan(cur, d, context(held()));
    assert.deepEqual(show(steps), ['kill web web-old']);
    assert.deepEqual(reasons(steps), ['superseded by a newer container']);
  });
});

describe('run state', () => {
  const stopped = desired(stack((s) => Object.assign(s.web!, { running: false, stop_grace_period: 30 })));
  const running = desired(stack());
  const withWeb = (d: typeof running, over: Parameters<typeof container>[1]) =>
    convergedState(d, { containers: [...containersOf(d).filter((c) => c.id !== 'web-1'), container(spec(d, 'web'), over)] });

  test('running: false does not change the config hash', () => {
    assert.equal(spec(desired(stack((s) => void (s.web!.running = false))), 'web').hash, spec(running, 'web').hash);
  });

  test('running: false stops a running container, under the lock', () => {
    assert.deepEqual(show(plan(convergedState(stopped), stopped, context())), ['takeLock 1']);
    const steps = plan(convergedState(stopped), stopped, context(held()));
    assert.deepEqual(steps, [{ action: 'stop', appId: 1, serviceName: 'web', containerId: 'web-1', timeout: 30 }]);
    assert.deepEqual(plan(withWeb(stopped, { state: 'exited' }), stopped, context(applied())), []);
  });

  test('an exited container is restarted only when the agent stopped it', () => {
    assert.deepEqual(plan(withWeb(running, { state: 'exited' }), running, context(applied())), []);
    const steps = plan(withWeb(running, { state: 'exited' }), running, context({ ...applied(), stoppedByAgent: new Set(['web-1']) }));
    assert.deepEqual(show(steps), ['start web web-1']);
  });

  test('a created but never started container is started', () => {
    assert.deepEqual(show(plan(withWeb(running, { state: 'created' }), running, context(applied()))), ['start web web-1']);
  });

  test('a failing service is not created or started again before its backoff', () => {
    const backoff = { serviceBackoff: new Map([['1/web', NOW + 15_000]]) };
    const noWeb = without(convergedState(running), 'web-1');
    const creating = plan(noWeb, running, context(backoff));
    assert.deepEqual(show(creating), ['noop web']);
    assert.deepEqual(reasons(creating), ['web failed to start; retrying in 15 s']);
    assert.equal(only(creating, 'noop')[0]!.retryAt, NOW + 15_000, 'planned again when the backoff ends');
    assert.deepEqual(show(plan(withWeb(running, { state: 'created' }), running, context(backoff))), ['noop web']);
    assert.deepEqual(show(plan(noWeb, running, context({ serviceBackoff: new Map([['1/web', NOW]]) }))), ['create web start']);
  });
});
