// The planner replacing a changed service (the reasons it gives, which never name values) and the
// update strategies: download-then-kill, kill-then-download, delete-then-download and hand-over.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceTarget, UpdateStrategy } from '../../src/shared/targetState.js';
import { handoverDeadline, plan, POLL_MS } from '../../src/agent/reconciler/plan.js';
import {
  NOW,
  applied,
  container,
  context,
  converge,
  convergedState,
  desired,
  held,
  image,
  imageIdOf,
  imagesOf,
  only,
  reasons,
  show,
  single,
  spec,
  stack,
  state,
  without,
} from './helpers/planFixtures.js';

describe('replacing a changed service', () => {
  const before = desired(stack());
  const after = desired(stack((s) => void (s.api!.environment = { FOO: 'new-secret' })));
  const current = convergedState(before);

  test('an environment change replaces only that service: lock, kill, create, release', () => {
    assert.deepEqual(show(plan(current, after, context())), ['takeLock 1']);
    assert.deepEqual(only(plan(current, after, context()), 'takeLock')[0]!.services, ['api', 'db', 'web']);

    const kill = plan(current, after, context(held()));
    assert.deepEqual(show(kill), ['kill api api-1']);
    assert.deepEqual(only(kill, 'kill')[0], {
      action: 'kill',
      appId: 1,
      serviceName: 'api',
      containerId: 'api-1',
      timeout: 10,
      reason: 'config changed: environment (FOO changed)',
    });

    const create = plan(without(current, 'api-1'), after, context(held()));
    assert.deepEqual(show(create), ['create api start']);
    assert.equal(only(create, 'create')[0]!.service.config.environment.FOO, 'new-secret');

    const done = plan(convergedState(after), after, context(held()));
    assert.deepEqual(show(done), ['releaseLock 1']);
  });

  test('the kill reason names changed variables but never their values', () => {
    const added = desired(stack((s) => void (s.api!.environment = { FOO: 'old-secret', BAR: 'new-secret' })));
    const [reason] = reasons(plan(current, added, context(held())));
    assert.equal(reason, 'config changed: environment (BAR added)');
    const dropped = desired(stack((s) => void delete s.api!.environment));
    assert.equal(reasons(plan(current, dropped, context(held())))[0], 'config changed: environment (FOO removed)');
    assert.ok(![reason, ...reasons(plan(current, after, context(held())))].some((r) => r?.includes('secret')));
  });

  test('a new image tag is fetched, then the old container is killed', () => {
    const retagged = desired(stack((s) => void (s.api!.image = 'registry.example.com/acme/api:1.1')));
    assert.deepEqual(show(plan(current, retagged, context(held()))), ['fetch api registry.example.com/acme/api:1.1', 'releaseLock 1']);
    const pulled = state({ ...current, images: [...current.images, image('registry.example.com/acme/api:1.1')] });
    const steps = plan(pulled, retagged, context(held()));
    assert.deepEqual(show(steps), ['kill api api-1']);
    assert.equal(reasons(steps)[0], 'config changed: image (registry.example.com/acme/api:1.0 → registry.example.com/acme/api:1.1)');
  });

  test('same config but the tag now names other image content → replaced', () => {
    const apiRef = spec(before, 'api').config.image;
    const repulled = state({ ...current, images: current.images.map((i) => (i.repoTags.includes(apiRef) ? { ...i, id: 'sha256:newer' } : i)) });
    const steps = plan(repulled, before, context(held()));
    assert.deepEqual(show(steps), ['kill api api-1']);
    assert.equal(reasons(steps)[0], 'config changed: image content of registry.example.com/acme/api:1.0 changed');
    const replaced = plan(without(repulled, 'api-1'), before, context(held()));
    assert.deepEqual(show(replaced), ['create api start']);
  });

  test('an unreadable config label still explains the replacement', () => {
    const cur = state({ ...current, containers: current.containers.map((c) => (c.id === 'api-1' ? { ...c, configLabel: 'garbage' } : c)) });
    assert.deepEqual(reasons(plan(cur, after, context(held()))), ['config changed: configuration (previous one unknown)']);
  });
});

describe('update strategies', () => {
  const twoServices = (strategy: UpdateStrategy, webImage: string, web: Partial<ServiceTarget> = {}, workerImage = 'busybox:1.36') =>
    desired(single({ web: { image: webImage, update_strategy: strategy, ...web }, worker: { image: workerImage } }, { id: 2 }));

  test('download-then-kill: kills nothing until every image of the release is present', () => {
    const before = twoServices('download-then-kill', 'nginx:1.25');
    const after = twoServices('download-then-kill', 'nginx:1.26', {}, 'busybox:1.37');
    const partly = convergedState(before, { images: [...imagesOf(before), image('nginx:1.26')] });
    const waiting = plan(partly, after, context());
    assert.deepEqual(show(waiting), ['noop web', 'fetch worker library/busybox:1.37']);
    assert.deepEqual(reasons(waiting), ["waiting for the release's images before replacing web: library/busybox:1.37"]);

    const all = convergedState(before, { images: [...imagesOf(before), ...imagesOf(after)] });
    const steps = plan(all, after, context(held()));
    assert.deepEqual(show(steps), ['kill web web-1', 'kill worker worker-1']);
    assert.equal(reasons(steps)[0], 'config changed: image (library/nginx:1.25 → library/nginx:1.26)');
  });

  test('kill-then-download: kills first, fetches once the old container is gone', () => {
    const before = twoServices('kill-then-download', 'nginx:1.25');
    const after = twoServices('kill-then-download', 'nginx:1.26');
    const current = convergedState(before);
    assert.deepEqual(show(plan(current, after, context())), ['takeLock 1']);
    const kill = plan(current, after, context(held()));
    assert.deepEqual(show(kill), ['kill web web-1']);
    assert.equal(only(kill, 'kill')[0]!.removeImage, undefined);
    assert.deepEqual(show(plan(without(current, 'web-1'), after, context(held()))), ['fetch web library/nginx:1.26', 'releaseLock 1']);
  });

  test('delete-then-download: the kill also removes the old image, unless the image is unchanged', () => {
    const before = twoServices('delete-then-download', 'nginx:1.25');
    const after = twoServices('delete-then-download', 'nginx:1.26');
    const kill = only(plan(convergedState(before), after, context(held())), 'kill');
    assert.deepEqual(
      kill.map((k) => [k.containerId, k.removeImage]),
      [['web-1', imageIdOf('nginx:1.25')]],
    );

    const envOnly = twoServices('delete-then-download', 'nginx:1.25', { environment: { A: '1' } });
    const keep = only(plan(convergedState(before), envOnly, context(held())), 'kill');
    assert.deepEqual(
      keep.map((k) => [k.containerId, k.removeImage]),
      [['web-1', undefined]],
    );
  });

  describe('hand-over', () => {
    const before = twoServices('hand-over', 'nginx:1.25');
    const after = twoServices('hand-over', 'nginx:1.26');
    const old = container(spec(before, 'web'));
    // The engine lists creation times in whole seconds: the new container was made 10 s ago.
    const fresh = container(spec(after, 'web'), { id: 'web-2', createdAt: NOW - 10_000 });
    const both = state({ ...convergedState(before, { images: imagesOf(after) }), containers: [old, fresh, container(spec(before, 'worker'))] });
    const running = (sinceMs: number) => ({ startedAt: new Map([['web-2', NOW - sinceMs]]) });

    test('creates the new container beside the old one, without the lock', () => {
      const steps = plan(convergedState(before, { images: [...imagesOf(before), ...imagesOf(after)] }), after, context());
      assert.deepEqual(show(steps), ['create web start handover']);
      assert.deepEqual(only(steps, 'create')[0]!.service, spec(after, 'web'));
    });

    test('waits while the new container runs and has not completed its handover, until its deadline', () => {
      const steps = plan(both, after, context({ ...held(), ...running(5_000) }));
      assert.deepEqual(show(steps), ['noop web', 'releaseLock 1']);
      assert.deepEqual(reasons(steps), ['waiting for web to complete its handover (at most 55 s)']);
      assert.equal(only(steps, 'noop')[0]!.retryAt, NOW + POLL_MS, 'the handover file is looked at again before the deadline');
    });

    test('kills the old container once the new one completed its handover', () => {
      const ctx = { handoverComplete: new Set(['1/web']), ...running(5_000) };
      assert.deepEqual(show(plan(both, after, context(ctx))), ['takeLock 1']);
      const steps = plan(both, after, context({ ...ctx, ...held() }));
      assert.deepEqual(show(steps), ['kill web web-1']);
      assert.deepEqual(reasons(steps), ['handed over to the new container']);
    });

    test('the timeout counts from when the new container started running, to the millisecond', () => {
      assert.deepEqual(show(plan(both, after, context({ ...held(), ...running(60_000) }))), ['kill web web-1']);
      const early = plan(both, after, context({ ...held(), ...running(59_999) }));
      assert.deepEqual(show(early), ['noop web', 'releaseLock 1']);
      assert.equal(only(early, 'noop')[0]!.retryAt, NOW + 1, 'planned again at the deadline');
      const short = twoServices('hand-over', 'nginx:1.26', { handover_timeout: 10_000 });
      const shortBoth = state({
        ...both,
        containers: [old, container(spec(short, 'web'), { id: 'web-2', createdAt: NOW - 10_000 }), container(spec(before, 'worker'))],
      });
      // created 10 s ago (the whole timeout), but running for 4 s only
      assert.deepEqual(reasons(plan(shortBoth, short, context({ ...held(), ...running(4_000) }))), ['waiting for web to complete its handover (at most 6 s)']);
      assert.deepEqual(show(plan(shortBoth, short, context({ ...held(), ...running(10_000) }))), ['kill web web-1']);
    });

    test('a new container that has not run yet does not start the timeout: the old one keeps serving', () => {
      const steps = plan(both, after, context(held()));
      assert.deepEqual(show(steps), ['noop web', 'releaseLock 1']);
      assert.deepEqual(reasons(steps), ['waiting for the new web container to run before it takes over']);
      assert.equal(only(steps, 'noop')[0]!.retryAt, NOW + POLL_MS);
      assert.equal(handoverDeadline(undefined, 60_000), Infinity);
      assert.equal(handoverDeadline(NOW + 0.5, 60_000), NOW + 60_000.5);
    });

    test('with published ports it replaces kill-first instead', () => {
      const portsBefore = twoServices('hand-over', 'nginx:1.25', { ports: ['8080:80'] });
      const portsAfter = twoServices('hand-over', 'nginx:1.26', { ports: ['8080:80'] });
      const current = convergedState(portsBefore, { images: [...imagesOf(portsBefore), ...imagesOf(portsAfter)] });
      assert.deepEqual(show(plan(current, portsAfter, context())), ['takeLock 1']);
      assert.deepEqual(show(plan(current, portsAfter, context(held()))), ['kill web web-1']);
      const next = plan(without(current, 'web-1'), portsAfter, context(held()));
      assert.deepEqual(show(next), ['create web start']);
    });
  });

  for (const strategy of ['download-then-kill', 'kill-then-download', 'delete-then-download', 'hand-over'] as const) {
    test(`${strategy}: an image and environment change converges and ends unlocked and recorded`, () => {
      const before = twoServices(strategy, 'nginx:1.25');
      const after = twoServices(strategy, 'nginx:1.26', { environment: { MODE: 'x' } });
      const ctx = context({ ...applied(2), handoverComplete: new Set(['1/web']), trackedImages: new Set(['library/nginx:1.25']) });
      const { world, passes } = converge({ current: convergedState(before), ctx, seq: 1 }, after);
      assert.deepEqual(passes.at(-1), []);
      assert.deepEqual(
        world.current.containers.map((c) => [c.serviceName, c.configHash]),
        [
          ['worker', spec(after, 'worker').hash],
          ['web', spec(after, 'web').hash],
        ],
      );
      assert.deepEqual(
        world.current.images.map((i) => i.repoTags[0]),
        ['library/busybox:1.36', 'library/nginx:1.26'],
      );
      assert.equal(world.ctx.locksHeld.size, 0);
      assert.equal(world.ctx.appliedReleases.get(1), 2);
      // Nothing destructive ever ran without the lock.
      let locked = false;
      for (const steps of passes) {
        if (steps.some((s) => s.action === 'kill' || s.action === 'stop')) assert.ok(locked, show(steps).join(', '));
        if (steps.some((s) => s.action === 'takeLock')) locked = true;
        if (steps.some((s) => s.action === 'releaseLock')) locked = false;
      }
    });
  }
});
