// The planner and what outlives services: networks changed, shared (network_mode service:x) or dropped,
// and images no longer wanted.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { plan } from '../../src/agent/reconciler/plan.js';
import {
  app,
  applied,
  containersOf,
  context,
  converge,
  convergedState,
  desired,
  held,
  image,
  imageIdOf,
  imagesOf,
  networksOf,
  only,
  reasons,
  show,
  single,
  stack,
  state,
  target,
} from './helpers/planFixtures.js';

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
