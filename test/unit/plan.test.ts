import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceTarget, UpdateStrategy } from '../../src/shared/targetState.js';
import { handoverDeadline, plan, POLL_MS } from '../../src/agent/reconciler/plan.js';
import type { CurrentState } from '../../src/agent/reconciler/types.js';
import {
  NOW,
  app,
  container,
  containersOf,
  context,
  converge,
  convergedState,
  desired,
  image,
  imageIdOf,
  imagesOf,
  networksOf,
  only,
  reasons,
  show,
  spec,
  stack,
  state,
  target,
  volumesOf,
} from './helpers/planFixtures.js';

const held = () => ({ locksHeld: new Set([1]) });
const applied = (releaseId = 1) => ({ appliedReleases: new Map([[1, releaseId]]) });
/** App 1 with the given services and nothing else. */
const single = (services: Record<string, ServiceTarget>, release = {}) => target({ 1: app(services, release) });
/** The same engine state without some of the app's containers. */
const without = (cur: CurrentState, ...ids: string[]) => state({ ...cur, containers: cur.containers.filter((c) => !ids.includes(c.id)) });

describe('fresh deploy', () => {
  const d = desired(stack());
  const images = imagesOf(d);
  const ready = state({ images, networks: networksOf(d), volumes: volumesOf(d) });

  test('creates the default network and declared volumes first; services wait for them', () => {
    const steps = plan(state({ images }), d, context());
    assert.deepEqual(show(steps), ['createVolume 1_data', 'createNetwork 1_default', 'noop api', 'noop db', 'noop web']);
    assert.deepEqual(only(steps, 'createVolume')[0]!.volume, { appId: 1, name: 'data', engineName: '1_data', config: {} });
    assert.deepEqual(only(steps, 'createNetwork')[0]!.network, d.apps.get(1)!.networks[0]);
    assert.deepEqual(reasons(steps), ['api waits for 1_default', 'db waits for 1_default, 1_data', 'web waits for 1_default']);
  });

  test('creates every service once networks and volumes exist; a dependent is created but not started', () => {
    const steps = plan(ready, d, context());
    assert.deepEqual(show(steps), ['create api', 'create db start', 'create web start']);
    assert.deepEqual(
      only(steps, 'create').map((s) => s.service),
      [spec(d, 'api'), spec(d, 'db'), spec(d, 'web')],
    );
    assert.ok(only(steps, 'create').every((s) => !s.handover));
  });

  test('starts the dependent only once its dependency runs', () => {
    const created = (name: string) => container(spec(d, name), { state: 'created' });
    const dbCreated = state({ ...ready, containers: [created('api'), created('db'), container(spec(d, 'web'))] });
    const first = plan(dbCreated, d, context());
    assert.deepEqual(show(first), ['noop api', 'start db db-1']);
    assert.deepEqual(reasons(first), ['api waits for db to run']);
    assert.deepEqual(only(first, 'start')[0], { action: 'start', appId: 1, serviceName: 'db', containerId: 'db-1' });

    const dbRunning = state({ ...ready, containers: [created('api'), container(spec(d, 'db')), container(spec(d, 'web'))] });
    assert.deepEqual(show(plan(dbRunning, d, context())), ['start api api-1']);
  });

  test('converges from an empty engine and records the release', () => {
    const { world, passes } = converge({ current: state({ images }), ctx: context(), seq: 0 }, d);
    assert.deepEqual(passes.map(show), [
      ['createVolume 1_data', 'createNetwork 1_default', 'noop api', 'noop db', 'noop web'],
      ['create api', 'create db start', 'create web start'],
      ['start api api-1'],
      ['markApplied 1 1'],
      [],
    ]);
    assert.deepEqual(
      world.current.containers.map((c) => [c.serviceName, c.state]),
      [
        ['api', 'running'],
        ['db', 'running'],
        ['web', 'running'],
      ],
    );
  });
});

describe('images', () => {
  const credentials = { url: 'https://registry.example.com/', username: 'bot', password: 'pw' };
  const mirror = { url: 'mirror.local:5000', username: 'm', password: 'mpw' };

  test('missing images are fetched, with the credentials of the registry that hosts them', () => {
    const d = desired({ ...stack(), registries: { acme: credentials } });
    const steps = plan(state({ networks: networksOf(d), volumes: volumesOf(d) }), d, context());
    assert.deepEqual(show(steps), ['fetch api registry.example.com/acme/api:1.0', 'fetch db library/postgres:16', 'fetch web library/nginx:1.25']);
    const [api, db, web] = only(steps, 'fetch');
    assert.deepEqual(api, { action: 'fetch', appId: 1, serviceName: 'api', image: 'registry.example.com/acme/api:1.0', registry: credentials });
    assert.ok(!('registry' in db!) && !('registry' in web!));
  });

  test('an explicit registry key wins over the image host', () => {
    const d = desired({ ...single({ web: { image: 'nginx:1.25', registry: 'mirror' } }), registries: { acme: credentials, mirror } });
    assert.deepEqual(only(plan(state({ networks: networksOf(d) }), d, context()), 'fetch')[0]!.registry, mirror);
  });

  const web = desired(single({ web: { image: 'nginx:1.25', required_tags: ['1.25-alpine', 'stable'] } }));
  const withImages = (...refs: string[]) => state({ networks: networksOf(web), images: refs.map((r) => image(r)) });

  test('an image being downloaded is waited for, not fetched again', () => {
    const steps = plan(withImages('nginx:1.25-alpine', 'nginx:stable'), web, context({ downloading: new Set(['library/nginx:1.25']) }));
    assert.deepEqual(show(steps), ['noop web']);
    assert.deepEqual(reasons(steps), ['downloading library/nginx:1.25']);
  });

  test('a failed pull is retried only after its backoff', () => {
    const cur = withImages('nginx:1.25-alpine', 'nginx:stable');
    const later = plan(cur, web, context({ pullBackoff: new Map([['library/nginx:1.25', NOW + 30_000]]) }));
    assert.deepEqual(show(later), ['noop web']);
    assert.deepEqual(reasons(later), ['pull of library/nginx:1.25 failed; retrying in 30 s']);
    const due = plan(cur, web, context({ pullBackoff: new Map([['library/nginx:1.25', NOW - 1]]) }));
    assert.deepEqual(show(due), ['fetch web library/nginx:1.25']);
  });

  test('required tags are each fetched, and the service is created only once all are present', () => {
    assert.deepEqual(show(plan(withImages('nginx:1.25'), web, context())), ['fetch web library/nginx:1.25-alpine', 'fetch web library/nginx:stable']);
    const oneLeft = plan(withImages('nginx:1.25', 'nginx:stable'), web, context({ downloading: new Set() }));
    assert.deepEqual(show(oneLeft), ['fetch web library/nginx:1.25-alpine']);
    const downloading = plan(withImages('nginx:1.25', 'nginx:stable'), web, context({ downloading: new Set(['library/nginx:1.25-alpine']) }));
    assert.deepEqual(show(downloading), ['noop web']);
    assert.deepEqual(show(plan(withImages('nginx:1.25', 'nginx:stable', 'nginx:1.25-alpine'), web, context())), ['create web start']);
  });
});

describe('unchanged services', () => {
  const d = desired(stack());

  test('nothing to do when every container matches and the release is recorded', () => {
    assert.deepEqual(plan(convergedState(d), d, context(applied())), []);
  });

  test('records the release when it is not recorded yet', () => {
    assert.deepEqual(plan(convergedState(d), d, context()), [{ action: 'markApplied', appId: 1, releaseId: 1, commit: 'c0ffee' }]);
    assert.deepEqual(show(plan(convergedState(d), d, context(applied(0)))), ['markApplied 1 1']);
  });

  test('a new release with the same service configs keeps the containers and only records the release', () => {
    const release2 = stack();
    Object.assign(release2.apps[1]!.release, { id: 2, commit: 'beef' });
    const next = desired(release2);
    assert.deepEqual(plan(convergedState(d), next, context(applied())), [{ action: 'markApplied', appId: 1, releaseId: 2, commit: 'beef' }]);
  });
});

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

describe('networks', () => {
  const withBackend = (backend: object) =>
    desired(single({ web: { image: 'nginx:1.25', networks: ['default', 'backend'] }, api: { image: 'busybox' } }, { networks: { backend } }));
  const before = withBackend({});
  const after = withBackend({ internal: true });

  test('a changed network: attached containers go, then the network is removed, recreated, and used', () => {
    const { passes } = converge({ current: convergedState(before), ctx: context({ ...held(), ...applied() }), seq: 1 }, after);
    assert.deepEqual(passes.map(show), [
      ['kill web web-1'],
      ['removeNetwork 1_backend', 'noop web'],
      ['createNetwork 1_backend', 'noop web'],
      ['create web start'],
      ['releaseLock 1'],
      [],
    ]);
    assert.deepEqual(reasons(passes[0]!), ['network backend changed']);
    assert.deepEqual(reasons(passes[1]!), ['web waits for 1_backend']);
    assert.deepEqual(only(passes[2]!, 'createNetwork')[0]!.network.config, { internal: true });
  });

  test('network_mode service:x: a container joined to a replaced x is replaced too', () => {
    const d = desired(single({ vpn: { image: 'busybox' }, sidecar: { image: 'busybox', network_mode: 'service:vpn' } }));
    const cur = convergedState(d);
    assert.deepEqual(plan(cur, d, context(applied())), [], 'joined to the live vpn: nothing to do');
    const vpnReplaced = state({ ...cur, containers: cur.containers.map((c) => (c.serviceName === 'vpn' ? { ...c, id: 'vpn-2' } : c)) });
    const steps = plan(vpnReplaced, d, context({ ...held(), ...applied() }));
    assert.deepEqual(show(steps), ['kill sidecar sidecar-1']);
    assert.deepEqual(reasons(steps), ['config changed: vpn, whose network it shares, was replaced']);
  });

  test('a network dropped from the target is removed once unused', () => {
    const d = desired(single({ web: { image: 'nginx:1.25' } }));
    const leftover = { id: 'n2', name: '1_old', appId: 1, configHash: 'x' };
    const cur = convergedState(d, { networks: [...networksOf(d), leftover] });
    assert.deepEqual(plan(cur, d, context(applied())), [{ action: 'removeNetwork', appId: 1, name: '1_old' }]);
  });
});

describe('image cleanup', () => {
  const d = desired(stack((s) => void (s.web!.required_tags = ['stable'])));
  const alias: Record<string, string> = { 'library/nginx:1.25': 'mirror.local/nginx:1.25', 'library/nginx:stable': 'mirror.local/nginx:stable' };
  const engineImages = [
    ...imagesOf(d).map((i) => (alias[i.repoTags[0]!] ? { ...i, repoTags: [...i.repoTags, alias[i.repoTags[0]!]!] } : i)),
    image('nginx:1.24'),
    image('nginx:1.23'),
    image('alpine:3.19'),
  ];
  const inUse = new Set([...containersOf(d).map((c) => c.imageId), imageIdOf('nginx:1.23')]);
  const current = convergedState(d, { images: engineImages, imageIdsInUse: inUse });
  const tracked = new Set([
    'library/nginx:1.24', // unwanted, unused: removed
    'library/nginx:1.23', // some container still uses it
    'library/nginx:1.25', // wanted
    'mirror.local/nginx:1.25', // another name of an image a container uses
    'mirror.local/nginx:stable', // another name of a wanted (required tag) image: untagged only
    'library/gone:1', // no longer on the engine
  ]);

  test('removes only tracked, unwanted images no container uses; untags an alias of a wanted image', () => {
    const steps = plan(current, d, context({ ...applied(), trackedImages: tracked }));
    assert.deepEqual(steps, [
      { action: 'removeImage', ref: 'library/nginx:1.24', imageId: imageIdOf('nginx:1.24') },
      { action: 'removeImage', ref: 'mirror.local/nginx:stable', imageId: '' },
    ]);
  });

  test("images kept for something else than a service (a gateway's dependent apps) are not removed", () => {
    const steps = plan(current, d, context({ ...applied(), trackedImages: tracked, keepImages: new Set(['library/nginx:1.24']) }));
    assert.deepEqual(steps, [{ action: 'removeImage', ref: 'mirror.local/nginx:stable', imageId: '' }]);
  });

  test('nothing is removed while anything downloads', () => {
    assert.deepEqual(plan(current, d, context({ ...applied(), trackedImages: tracked, downloading: new Set(['library/x:1']) })), []);
  });

  test('an app with work left does not hold back unrelated cleanup, nor lose images it wants', () => {
    assert.deepEqual(show(plan(current, d, context({ trackedImages: tracked }))), [
      'markApplied 1 1',
      'removeImage library/nginx:1.24',
      'removeImage mirror.local/nginx:stable',
    ]);
    const twoApps = desired(target({ 1: stack((s) => void (s.web!.required_tags = ['stable'])).apps[1]!, 2: app({ web: { image: 'nginx:1.24' } }) }));
    const removed = plan(current, twoApps, context({ ...applied(), trackedImages: tracked })).flatMap((s) => (s.action === 'removeImage' ? [s.ref] : []));
    assert.ok(!removed.includes('library/nginx:1.24'), 'app 2 still wants nginx:1.24');
  });
});
