// Planner: AutoPi's release tasks — remove_containers ("initial containers") and purge_data.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { plan } from '../../src/agent/reconciler/plan.js';
import type { ForeignContainer, PlanContext } from '../../src/agent/reconciler/types.js';
import { validateTargetState } from '../../src/shared/validateTarget.js';
import { ValidationError } from '../../src/shared/errors.js';
import { app, context, converge, convergedState, desired, imagesOf, only, reasons, show, state, target } from './helpers/planFixtures.js';

const factory = (state: ForeignContainer['state'] = 'running'): ForeignContainer => ({ id: 'factory-id', name: 'factory', state });
const release = (id: number, extra = {}) =>
  desired(
    target({
      1: app(
        { main: { image: `main:${id}`, volumes: ['data:/data', '/srv/app/config:/config', '/srv/app/ro:/ro:ro'] } },
        { id, volumes: { data: {} }, ...extra },
      ),
    }),
  );
const withRemove = (id: number) => release(id, { remove_containers: ['factory', 'not-there'] });

describe('remove_containers', () => {
  const d = withRemove(2);
  const noImages = state({ ...convergedState(d), containers: [], images: [], others: [factory()] });

  test('while the release downloads, the initial container keeps running and nothing is stopped', () => {
    const steps = plan(noImages, d, context());
    assert.deepEqual(
      show(steps).filter((s) => !s.startsWith('fetch')),
      [],
    );
  });

  test('once the images are here: stopped under the lock; the release starts only after', () => {
    const ready = state({ ...noImages, images: imagesOf(d) });
    assert.deepEqual(show(plan(ready, d, context())), ['noop main', 'takeLock 1']);
    assert.match(reasons(plan(ready, d, context()))[0]!, /main waits for factory to stop/);
    const steps = plan(ready, d, context({ locksHeld: new Set([1]) }));
    assert.deepEqual(show(steps), ['noop main', 'stopInitial factory']);
    assert.equal(only(steps, 'stopInitial')[0]!.releaseId, 2);
  });

  test('success: the release runs, then the initial container is removed, then the release is recorded', () => {
    const ready = state({ ...noImages, images: imagesOf(d) });
    const { world, passes } = converge({ current: ready, ctx: context({ locksHeld: new Set([1]) }), seq: 0 }, d);
    const flat = passes.flatMap(show);
    const order = ['stopInitial factory', 'create main start', 'removeInitial factory', 'markApplied 1 2'].map((s) => flat.indexOf(s));
    assert.ok(
      order.every((i, n) => i >= 0 && (n === 0 || i > order[n - 1]!)),
      flat.join(', '),
    );
    assert.deepEqual(world.current.others, []);
    assert.equal(world.ctx.initialContainers.has(1), false);
  });

  test('failure: a container of the release that fails to start brings the initial one back, once', () => {
    const failed = state({ ...noImages, images: imagesOf(d), others: [factory('exited')] });
    const ctx: Partial<PlanContext> = {
      locksHeld: new Set([1]),
      initialContainers: new Map([[1, { releaseId: 2, phase: 'stopped' as const, names: ['factory'] }]]),
      failedReleases: new Map([[1, 2]]),
      serviceBackoff: new Map([['1/main', Date.now() + 60_000]]),
    };
    const steps = plan(failed, d, context(ctx));
    assert.deepEqual(
      show(steps).filter((s) => s !== 'noop main'),
      ['restoreInitial factory'],
    );
    // restored: left running, not stopped again for this release, while the release keeps retrying
    const restored = state({ ...failed, others: [factory()] });
    const after = plan(restored, d, context({ ...ctx, initialContainers: new Map([[1, { releaseId: 2, phase: 'restored' as const, names: ['factory'] }]]) }));
    assert.ok(!show(after).some((s) => s.includes('Initial')), show(after).join(', '));
  });

  test('a release failure before anything was stopped restores nothing', () => {
    const ready = state({ ...noImages, images: imagesOf(d) });
    const steps = plan(ready, d, context({ locksHeld: new Set([1]), failedReleases: new Map([[1, 2]]) }));
    assert.ok(!show(steps).includes('restoreInitial factory'));
  });

  test('a later release tries again after a restore, and carries over what an earlier one stopped', () => {
    const ready3 = withRemove(3);
    const current = state({ ...noImages, images: imagesOf(ready3) });
    const restored = { initialContainers: new Map([[1, { releaseId: 2, phase: 'restored' as const, names: ['factory'] }]]) };
    assert.ok(show(plan(current, ready3, context({ locksHeld: new Set([1]), ...restored }))).includes('stopInitial factory'));
    // release 4 does not name it, but release 2 stopped it: it is removed when 4 runs
    const d4 = release(4);
    const stopped = { initialContainers: new Map([[1, { releaseId: 2, phase: 'stopped' as const, names: ['factory'] }]]) };
    const running4 = state({ ...convergedState(d4), others: [factory('exited')] });
    assert.deepEqual(show(plan(running4, d4, context(stopped))), ['removeInitial factory']);
  });

  test('an applied release leaves same-named containers alone; an owned container is never an initial one', () => {
    const running = state({ ...convergedState(d), others: [factory()] });
    assert.deepEqual(show(plan(running, d, context({ appliedReleases: new Map([[1, 2]]) }))), []);
  });

  test('an app removed mid-deployment restarts what it stopped', () => {
    const empty = desired(target({}));
    const current = state({ others: [factory('exited')] });
    const steps = plan(current, empty, context({ initialContainers: new Map([[1, { releaseId: 2, phase: 'stopped' as const, names: ['factory'] }]]) }));
    assert.deepEqual(show(steps), ['restoreInitial factory']);
  });
});

describe('purge_data', () => {
  const v1 = release(1);
  const withPurge = (id: number) => {
    const d = release(id);
    d.apps.get(1)!.services.get('main')!.purgeData = true;
    return d;
  };

  test('a new release kills the old container, purges writable volumes and folders once, then starts', () => {
    const d2 = withPurge(2);
    const current = state({ ...convergedState(v1), images: [...imagesOf(v1), ...imagesOf(d2)] });
    const kill = plan(current, d2, context({ locksHeld: new Set([1]) }));
    assert.deepEqual(show(kill), ['kill main main-1']);
    assert.match(reasons(kill)[0]!, /purged before release 2/);
    const gone = state({ ...current, containers: [] });
    const purge = only(plan(gone, d2, context({ locksHeld: new Set([1]) })), 'purgeData');
    assert.deepEqual(
      purge.map((p) => [p.volumes, p.folders]),
      [[['1_data'], ['/srv/app/config']]],
    );
    const after = plan(gone, d2, context({ locksHeld: new Set([1]), purgedData: new Set(['1/main@2']) }));
    assert.deepEqual(show(after), ['create main start']);
  });

  test('the same config in a new release is still recreated on purged data; within a release, never twice', () => {
    const d1 = withPurge(1);
    const d2 = withPurge(2);
    d2.apps.get(1)!.services.get('main')!.config.image = d1.apps.get(1)!.services.get('main')!.config.image;
    d2.apps.get(1)!.services.get('main')!.images = d1.apps.get(1)!.services.get('main')!.images;
    const onV1 = convergedState(d1);
    assert.deepEqual(show(plan(onV1, d1, context({ appliedReleases: new Map([[1, 1]]), purgedData: new Set(['1/main@1']) }))), []);
    assert.deepEqual(show(plan(onV1, d2, context({ locksHeld: new Set([1]), purgedData: new Set(['1/main@1']) }))), ['kill main main-1']);
  });

  test('purge_data waits for the initial containers to stop first', () => {
    const d = withPurge(2);
    d.apps.get(1)!.removeContainers = ['factory'];
    const current = state({ ...convergedState(d), containers: [], others: [factory()] });
    const steps = plan(current, d, context({ locksHeld: new Set([1]) }));
    assert.deepEqual(show(steps), ['noop main', 'stopInitial factory']);
  });

  test('the target refuses purging a bind outside the data areas', () => {
    const bad = (path: string) => target({ 1: app({ main: { image: 'x', volumes: [`${path}:/d`], purge_data: true } }) });
    for (const path of [
      '/etc',
      '/home',
      '/usr/lib/x',
      '/var/lib/docker/volumes',
      '/var/lib/app',
      '/var/log/app',
      '/mnt/boot/x',
      '/root/app',
      '/home/app/data',
      '/data',
    ]) {
      assert.throws(
        () => validateTargetState(bad(path)),
        (e: unknown) => e instanceof ValidationError && e.field === '/apps/1/release/services/main/purge_data',
        path,
      );
    }
    validateTargetState(bad('/data/app'));
    validateTargetState(target({ 1: app({ main: { image: 'x', volumes: ['/etc:/d:ro'], purge_data: true } }) }));
  });
});
