// A service's error belongs to the attempt that made it: it stays while the plan holds the failed
// step (or the wait for its retry) and goes once the plan no longer does.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { plan } from '../../src/agent/reconciler/plan.js';
import { ServiceErrors } from '../../src/agent/reconciler/serviceErrors.js';
import type { Step } from '../../src/agent/reconciler/types.js';
import { NOW, app, container, context, convergedState, desired, networksOf, only, spec, state, target } from './helpers/planFixtures.js';

const release = (id: number, image: string, environment: Record<string, string> = {}) =>
  desired(target({ 1: app({ web: { image, environment } }, { id, commit: `c${id}` }) }));

describe('service errors', () => {
  const r1 = release(1, 'nginx:1.25');
  const running = convergedState(r1);

  test('a failed pull stays while its retry is planned and goes when a release brings the service back to what runs', () => {
    const r2 = release(2, 'nginx:no-such-tag');
    const errors = new ServiceErrors();
    const [fetch] = only(plan(running, r2, context({ appliedReleases: new Map([[1, 1]]) })), 'fetch');
    assert.ok(fetch, 'release 2 fetches its image');
    errors.set(1, 'web', fetch, 'failed to download nginx:no-such-tag: manifest unknown');

    // the pull is backed off: the wait for its retry holds the fetch, and the error with it
    errors.retain(plan(running, r2, context({ pullBackoff: new Map([['library/nginx:no-such-tag', NOW + 30_000]]) })));
    assert.match(errors.get(1, 'web') ?? '', /manifest unknown/);
    // a later release with the same missing image is the same attempt, still failing
    errors.retain(plan(running, release(3, 'nginx:no-such-tag', {}), context({ downloading: new Set(['library/nginx:no-such-tag']) })));
    assert.match(errors.get(1, 'web') ?? '', /manifest unknown/);

    // release 4 is release 1's configuration: the running container matches and nothing is fetched
    const steps = plan(running, release(4, 'nginx:1.25'), context({ appliedReleases: new Map([[1, 1]]) }));
    assert.deepEqual(
      steps.map((s) => s.action),
      ['markApplied'],
    );
    errors.retain(steps);
    assert.equal(errors.get(1, 'web'), undefined);
  });

  test('a failed create stays through its backoff; a new configuration is a new attempt', () => {
    const errors = new ServiceErrors();
    const noWeb = state({ networks: networksOf(r1), images: convergedState(r1).images });
    const [create] = only(plan(noWeb, r1, context()), 'create');
    errors.set(1, 'web', create!, 'create failed: no such device /dev/ttyUSB0');
    const backoff = context({ serviceBackoff: new Map([['1/web', NOW + 15_000]]) });
    errors.retain(plan(noWeb, r1, backoff));
    assert.match(errors.get(1, 'web') ?? '', /ttyUSB0/);
    errors.retain(plan(noWeb, release(1, 'nginx:1.25', { MODE: 'fixed' }), backoff));
    assert.equal(errors.get(1, 'web'), undefined);
  });

  test('a failed kill stays while the kill is planned (even held back by a lock) and goes with the container', () => {
    const errors = new ServiceErrors();
    const r2 = release(2, 'nginx:1.25', { V: '2' });
    const locked = { locksHeld: new Set([1]) };
    const [kill] = only(plan(running, r2, context(locked)), 'kill');
    errors.set(1, 'web', kill!, 'kill failed: engine timeout');
    errors.retain(plan(running, r2, context(locked)));
    assert.ok(errors.get(1, 'web'));
    errors.retain(plan(running, r2, context({ lockBackoff: new Map([[1, NOW + 5_000]]) })));
    assert.ok(errors.get(1, 'web'), 'the lock wait holds the kill back');
    const gone = state({ ...running, containers: [container(spec(r2, 'web'), { id: 'web-2' })] });
    errors.retain(plan(gone, r2, context(locked)));
    assert.equal(errors.get(1, 'web'), undefined);
  });

  test('only errors whose step is planned are kept; other services keep theirs', () => {
    const errors = new ServiceErrors();
    const fetch: Step = { action: 'fetch', appId: 1, serviceName: 'a', image: 'library/x:1' };
    const start: Step = { action: 'start', appId: 1, serviceName: 'b', containerId: 'b-1' };
    errors.set(1, 'a', fetch, 'pull failed');
    errors.set(1, 'b', start, 'start failed');
    errors.retain([{ action: 'noop', appId: 1, serviceName: 'b', reason: 'b failed to start; retrying in 2 s', retryAt: 0, holds: ['start b-1'] }]);
    assert.deepEqual([errors.get(1, 'a'), errors.get(1, 'b')], [undefined, 'start failed']);
  });
});
