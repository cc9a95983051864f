// The planner and update locks: destructive steps only under the app's lock, lock backoff, releasing
// the lock; removing services and whole apps under it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { plan } from '../../src/agent/reconciler/plan.js';
import { NOW, app, applied, context, converge, convergedState, desired, held, imagesOf, only, reasons, show, stack, target } from './helpers/planFixtures.js';

describe('update locks', () => {
  const before = desired(stack());
  const after = desired(
    stack((s) => {
      s.api!.environment = { FOO: 'new-secret' };
      s.cache = { image: 'redis:7' };
    }),
  );
  const current = convergedState(before, { images: imagesOf(after) });

  test('a needed kill without the lock plans only takeLock, next to the non-destructive steps', () => {
    const steps = plan(current, after, context());
    assert.deepEqual(show(steps), ['create cache start', 'takeLock 1']);
    assert.deepEqual(only(steps, 'takeLock')[0], { action: 'takeLock', appId: 1, services: ['api', 'cache', 'db', 'web'] });
  });

  test('while the app holds its lock, the services it holds back say so, and the lock is retried after its backoff', () => {
    const steps = plan(current, after, context({ lockBackoff: new Map([[1, NOW + 20_000]]) }));
    assert.deepEqual(show(steps), ['create cache start', 'noop api']);
    assert.deepEqual(reasons(steps), ['api waits: updates are locked by app 1; retrying in 20 s']);
    assert.deepEqual(only(steps, 'noop')[0]!.holds, ['kill api-1']);
    const retry = plan(current, after, context({ lockBackoff: new Map([[1, NOW]]) }));
    assert.deepEqual(show(retry), ['create cache start', 'noop api', 'takeLock 1']);
    assert.deepEqual(reasons(retry), ['api waits: updates are locked by app 1']);
  });

  test('a lock wait is planned again when its backoff ends, and says only the lock holds it until then', () => {
    const wait = only(plan(current, after, context({ lockBackoff: new Map([[1, NOW + 20_000]]) })), 'noop')[0]!;
    assert.equal(wait.retryAt, NOW + 20_000);
    assert.equal(wait.lock, true);
    const due = only(plan(current, after, context({ lockBackoff: new Map([[1, NOW]]) })), 'noop')[0]!;
    assert.equal(due.lock, undefined, 'the take is due: the plan tries it');
  });

  test('with the lock held the kill is planned', () => {
    assert.deepEqual(show(plan(current, after, context(held()))), ['create cache start', 'kill api api-1']);
  });

  test('the lock is released once only waits remain, and the release is recorded after that', () => {
    const d = desired(stack((s) => void (s.web!.image = 'nginx:1.26')));
    const cur = convergedState(before);
    const steps = plan(cur, d, context({ ...held(), downloading: new Set(['library/nginx:1.26']) }));
    assert.deepEqual(show(steps), ['noop web', 'releaseLock 1']);
    assert.deepEqual(show(plan(convergedState(before), before, context(held()))), ['releaseLock 1']);
    assert.deepEqual(show(plan(convergedState(before), before, context())), ['markApplied 1 1']);
  });

  test("one app's lock does not hold back another app", () => {
    const two = desired(target({ 1: stack((s) => void (s.api!.environment = { FOO: 'x' })).apps[1]!, 2: app({ web: { image: 'nginx:1.25' } }) }));
    const cur = convergedState(before, { images: imagesOf(two) });
    assert.deepEqual(show(plan(cur, two, context())), ['takeLock 1', 'createNetwork 2_default', 'noop web']);
  });
});

describe('removing services and apps', () => {
  const before = desired(stack());

  test('a service removed from the target is killed under the lock', () => {
    const after = desired(stack((s) => void delete s.web));
    assert.deepEqual(only(plan(convergedState(before), after, context()), 'takeLock')[0]!.services, ['api', 'db', 'web']);
    const steps = plan(convergedState(before), after, context(held()));
    assert.deepEqual(show(steps), ['kill web web-1']);
    assert.deepEqual(reasons(steps), ['service removed from target']);
  });

  test('a removed app is stopped dependents first, its network removed, its record cleared; volumes stay', () => {
    const none = desired(target({}));
    const start = convergedState(before);
    assert.deepEqual(show(plan(start, none, context())), ['noop db', 'takeLock 1']);

    const { world, passes } = converge({ current: start, ctx: context({ ...held(), ...applied() }), seq: 0 }, none);
    assert.deepEqual(passes.map(show), [
      ['noop db', 'kill api api-1', 'kill web web-1'],
      ['kill db db-1'],
      ['removeNetwork 1_default'],
      ['releaseLock 1'],
      ['markApplied 1 null'],
      [],
    ]);
    assert.deepEqual(reasons(passes[0]!)[0], 'db stops after api');
    assert.deepEqual(only(passes[4]!, 'markApplied')[0], { action: 'markApplied', appId: 1, releaseId: null, commit: null });
    assert.deepEqual(world.current.volumes, [{ name: '1_data', appId: 1 }]);
    assert.equal(world.ctx.appliedReleases.has(1), false);
  });

  test('a removed app that was never recorded still has its lock released, and no record step', () => {
    const { world, passes } = converge({ current: convergedState(before), ctx: context(held()), seq: 0 }, desired(target({})));
    assert.deepEqual(passes.slice(-3).map(show), [['removeNetwork 1_default'], ['releaseLock 1'], []]);
    assert.ok(!passes.flat().some((s) => s.action === 'markApplied'));
    assert.equal(world.ctx.locksHeld.size, 0);
  });
});
