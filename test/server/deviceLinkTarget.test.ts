// The device link on each storage backend: the target state with ETags and long polls, woken by a
// change on this node; a device hanging up, and the server closing, end the waits.
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { backends, nodes } from './backends.js';
import { device, listen, newDevice, newProject, sleep, until, user, waiting } from './helpers.js';
import { insertRelease } from './deviceLinkFixture.js';

for (const backend of backends()) {
  describe(`device link on ${backend.name}`, () => {
    test('target state: 200 with the target and its ETag, 304 for If-None-Match, 401 for a wrong device key; a wait with no change ends in 304', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const link = device(base, dev.key);
      const first = await link.state();
      assert.equal(first.status, 200);
      assert.match(first.etag!, /^"[0-9a-f]{32}"$/);
      assert.deepEqual(first.body, (await server.targets.get(dev.id))!.target);
      assert.equal(`"${(await server.targets.get(dev.id))!.etag}"`, first.etag);
      const cached = await link.state({ etag: first.etag! });
      assert.equal(cached.status, 304);
      assert.equal(cached.etag, first.etag);
      assert.equal((await link.state({ etag: `W/${first.etag!}` })).status, 304, 'a weak tag matches too');
      assert.equal((await link.state({ etag: '"other"' })).status, 200);

      assert.equal((await device(base, 'bsd_wrong').state()).status, 401);
      assert.equal((await device(base, server.firstAdminToken!).state()).status, 401, 'a user token is not a device key');
      assert.equal((await fetch(`${base}/device/v1/state`)).status, 401);
      assert.equal((await link.state({ wait: 301 })).status, 400, 'wait is 0–300 s');

      const waited = await link.state({ etag: first.etag!, wait: 1 });
      assert.equal(waited.status, 304);
      assert.ok(waited.ms >= 950 && waited.ms < 3000, `a wait of 1 s took ${Math.round(waited.ms)} ms`);
      assert.equal(waiting(server), 0, 'no waiter is left behind');
      const noEtag = await link.state({ wait: 30 });
      assert.equal(noEtag.status, 200, 'without If-None-Match a wait answers at once');
      assert.ok(noEtag.ms < 1000);
    });

    test('a long poll answers as soon as the target changes (well under a second)', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const other = await newDevice(server);
      const link = device(base, dev.key);
      const { etag } = await link.state();
      const project = await newProject(server, [dev.id]);

      const polling = link.state({ etag: etag!, wait: 30 });
      const otherPolling = device(base, other.key).state({ etag: (await device(base, other.key).state()).etag!, wait: 2 });
      await until('the poll to wait', () => waiting(server) === 2);
      await sleep(100);
      // the release, as the releases resource does it: commit, then refresh the targets of its devices
      const release = await insertRelease(server, project, [dev.id]);
      const changed = performance.now();
      assert.deepEqual(await server.targets.refresh([dev.id, other.id]), [dev.id]);
      const answer = await polling;
      const latency = performance.now() - changed;
      t.diagnostic(`${backend.name}, one node: release → waiting device answered in ${latency.toFixed(1)} ms`);
      assert.equal(answer.status, 200);
      assert.notEqual(answer.etag, etag);
      assert.equal(answer.body!.apps[String(project)]!.release.id, release);
      assert.equal(answer.body!.apps[String(project)]!.release.services.web!.image, 'example/web:v1');
      assert.ok(latency < 1000, `answered ${latency} ms after the change`);
      assert.equal((await otherPolling).status, 304, 'a device whose target did not change keeps waiting');

      // a wake-up whose ETag did not really change keeps the poll waiting until its deadline
      const again = link.state({ etag: answer.etag!, wait: 1 });
      await until('the poll to wait', () => waiting(server) === 1);
      await server.notifier.notify([dev.id]);
      const unchanged = await again;
      assert.equal(unchanged.status, 304);
      assert.ok(unchanged.ms >= 950, `a spurious wake-up ended the wait after ${Math.round(unchanged.ms)} ms`);

      // renaming the device changes its target
      const renamed = link.state({ etag: answer.etag!, wait: 30 });
      await until('the poll to wait', () => waiting(server) === 1);
      assert.equal((await user(server)('PATCH', `/dongle/devices/${dev.id}/`, { name: 'renamed' })).status, 200);
      const r = await renamed;
      assert.equal(r.status, 200);
      assert.equal(r.body!.name, 'renamed');
      assert.ok(r.ms < 1000);
    });

    test('a device hanging up ends its wait: no waiter is left behind', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const { etag } = await device(base, dev.key).state();
      const req = http.get(`${base}/device/v1/state?wait=30`, { headers: { authorization: `Bearer ${dev.key}`, 'if-none-match': etag! } });
      req.on('error', () => {});
      await until('the poll to wait', () => waiting(server) === 1);
      req.destroy();
      await until('the waiter to go', () => waiting(server) === 0, 2000);
      // the server still answers (nothing broke on the closed connection)
      assert.equal((await device(base, dev.key).state({ etag: etag! })).status, 304);
    });

    test('closing the server answers the polls it holds at once', async (t) => {
      const servers = await nodes(t, backend.name, 1);
      const server = servers[0]!;
      const base = await listen(server);
      const dev = await newDevice(server);
      const { etag } = await device(base, dev.key).state();
      const held = device(base, dev.key).state({ etag: etag!, wait: 60 });
      await until('the poll to wait', () => waiting(server) === 1);
      const started = performance.now();
      await server.close();
      assert.equal((await held).status, 304);
      assert.ok(performance.now() - started < 2000, 'close does not wait for the poll deadline');
    });
  });
}
