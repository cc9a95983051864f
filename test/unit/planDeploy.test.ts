// The planner on a first deploy (volumes and networks before services, dependencies started in order),
// fetching images (registry credentials, downloads in progress, pull backoff, required tags), and a
// target whose services are already running.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { plan } from '../../src/agent/reconciler/plan.js';
import {
  NOW,
  applied,
  container,
  context,
  converge,
  convergedState,
  desired,
  image,
  imagesOf,
  networksOf,
  only,
  reasons,
  show,
  single,
  spec,
  stack,
  state,
  volumesOf,
} from './helpers/planFixtures.js';

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
