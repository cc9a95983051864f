// The device link on several PostgreSQL nodes: a change made through one node wakes a device
// long-polling another (LISTEN/NOTIFY, payloads chunked), also after the listening connection drops.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import type { Server } from '../../src/server/server.js';
import { payloadChunks, type PgNotifier } from '../../src/server/wakeups/pgNotifier.js';
import { nodes } from './backends.js';
import { device, listen, newDevice, newProject, sleep, until, user, waiting } from './helpers.js';
import { insertRelease } from './deviceLinkFixture.js';

test('NOTIFY payloads: device ids, comma-separated, each payload under 8000 bytes', () => {
  const ids = Array.from({ length: 1000 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
  const chunks = payloadChunks(ids);
  assert.equal(chunks.length, 5);
  assert.ok(chunks.every((c) => Buffer.byteLength(c) < 8000));
  assert.deepEqual(chunks.join(',').split(','), ids);
  assert.deepEqual(payloadChunks([]), []);
  assert.throws(() => payloadChunks(['a,b']), /not a device id/);
});

if (process.env.BOSUN_TEST_DATABASE_URL) {
  describe('device link on several PostgreSQL nodes', () => {
    test('a change made through node A wakes a device long-polling node B in well under a second', async (t) => {
      const servers = await nodes(t, 'postgres', 2);
      const [a, b] = servers as [Server, Server];
      const baseB = await listen(b);
      const dev = await newDevice(a);
      const link = device(baseB, dev.key);
      let { etag } = await link.state();
      const project = await newProject(a, [dev.id]);

      const latencies: number[] = [];
      for (let i = 0; i < 5; i++) {
        const polling = link.state({ etag: etag!, wait: 30 });
        await until('the poll to wait on B', () => waiting(b) === 1);
        await insertRelease(a, project, [dev.id]);
        const changed = performance.now();
        await a.targets.refresh([dev.id]);
        const answer = await polling;
        latencies.push(performance.now() - changed);
        assert.equal(answer.status, 200);
        assert.notEqual(answer.etag, etag);
        etag = answer.etag;
      }
      t.diagnostic(`postgres, two nodes: change on A → device waiting on B answered in ${latencies.map((l) => l.toFixed(1)).join(', ')} ms`);
      assert.ok(Math.max(...latencies) < 500, `latencies ${latencies.join(', ')} ms`);

      // through the user API of node A: a release, then a rename
      const viaApi = link.state({ etag: etag!, wait: 30 });
      await until('the poll to wait on B', () => waiting(b) === 1);
      const started = performance.now();
      const created = await user(a)('POST', `/docker/projects/${project}/releases/`, {
        version: '2.0.0',
        containers: [{ name: 'web', image: 'example/web', tag: 'v2' }],
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const released = await viaApi;
      const apiLatency = performance.now() - started;
      assert.equal(released.status, 200);
      assert.equal(released.body!.apps[String(project)]!.release.id, Number(created.body.id));
      t.diagnostic(`postgres, two nodes: POST release on A → device waiting on B answered ${apiLatency.toFixed(1)} ms after the request was sent`);
      assert.ok(apiLatency < 1000);
      etag = released.etag;

      const renamed = link.state({ etag: etag!, wait: 30 });
      await until('the poll to wait on B', () => waiting(b) === 1);
      assert.equal((await user(a)('PATCH', `/dongle/devices/${dev.id}/`, { name: 'via-a' })).status, 200);
      const r = await renamed;
      assert.equal(r.status, 200);
      assert.equal(r.body!.name, 'via-a');
      assert.ok(r.ms < 1000);
    });

    test('NOTIFY payloads are chunked under 8000 bytes: a change to many devices wakes them all', async (t) => {
      const servers = await nodes(t, 'postgres', 2);
      const [a, b] = servers as [Server, Server];
      // 400 device ids of 36 characters: about 15 kB of ids, two notifications at least
      const ids = Array.from({ length: 400 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
      const woken = ids.map((id) => b.notifier.waitForChange(id, 5000));
      const started = performance.now();
      await a.notifier.notify(ids);
      assert.deepEqual(new Set(await Promise.all(woken)), new Set([true]));
      t.diagnostic(`postgres: 400 waiters on B woken by one notify on A in ${(performance.now() - started).toFixed(1)} ms`);
    });

    test('the listening connection is re-established when it drops, and the waiters re-check their targets', async (t) => {
      const servers = await nodes(t, 'postgres', 2);
      const [a, b] = servers as [Server, Server];
      const notifierB = b.notifier as PgNotifier;
      const baseB = await listen(b);
      const dev = await newDevice(a);
      const link = device(baseB, dev.key);
      const { etag } = await link.state();
      const project = await newProject(a, [dev.id]);
      // Notifications of the device sent so far (its first target, built by the poll above) reach B
      // before the poll waits: a late one would wake it to find the unannounced change below.
      const heard = b.notifier.waitForChange('barrier', 10_000);
      await a.notifier.notify(['barrier']);
      assert.ok(await heard);
      // The poll counts as waiting from before its first look: the change must come after that look.
      let looks = 0;
      const stored = b.targets.stored.bind(b.targets);
      b.targets.stored = async (ids) => stored(ids).finally(() => looks++);
      const polling = link.state({ etag: etag!, wait: 30 });
      await until('the poll to wait on B', () => waiting(b) === 1 && looks > 0);

      // a change that nobody is told of (as one made while B does not listen): the poll keeps waiting
      const { target } = (await a.targets.get(dev.id))!;
      await a.db
        .updateTable('device_target')
        .set({ etag: 'f'.repeat(32), target_json: JSON.stringify({ ...target, name: 'unannounced' }) })
        .where('device_id', '=', dev.id)
        .execute();
      await sleep(200);
      assert.equal(waiting(b), 1);
      // B's listener is cut off: B reconnects, and every waiter re-checks its ETag
      const pid = notifierB.listenerPid;
      assert.ok(pid);
      const reconnected = notifierB.nextConnect();
      const cut = performance.now();
      await sql`select pg_terminate_backend(${pid}::int)`.execute(a.db);
      const answer = await polling;
      const answeredAfter = performance.now() - cut;
      await reconnected;
      assert.equal(answer.status, 200);
      assert.equal(answer.body!.name, 'unannounced');
      assert.equal(notifierB.reconnects, 1);
      assert.notEqual(notifierB.listenerPid, pid);
      t.diagnostic(`postgres: B's listener cut off → reconnected and the waiting poll answered ${answeredAfter.toFixed(0)} ms later`);

      // and B hears notifications again
      const next = link.state({ etag: answer.etag!, wait: 30 });
      await until('the poll to wait on B', () => waiting(b) === 1);
      await insertRelease(a, project, [dev.id]);
      const changed = performance.now();
      await a.targets.refresh([dev.id]);
      assert.equal((await next).status, 200);
      assert.ok(performance.now() - changed < 1000);
    });
  });
}
