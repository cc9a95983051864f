// The device command queue on each storage backend: a command is delivered once, its result accepted
// only from the device it was for, and the queue is bounded, finished commands deleted.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DeviceCommands, MAX_PENDING_PER_DEVICE } from '../../src/server/commands/deviceCommands.js';
import { backends } from './backends.js';
import { device, listen, newDevice, until, user, waiting } from './helpers.js';
import { commandRows } from './deviceCommandsFixture.js';

for (const backend of backends()) {
  describe(`device commands and the supervisor proxy on ${backend.name}`, () => {
    test('a command is delivered once: two polls waiting when it is queued, and many polls racing for a queue', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const link = device(base, dev.key);
      const commands = new DeviceCommands(server.db, server.notifier);

      const polls = [link.commands(2), link.commands(2)];
      await until('both polls to wait', () => waiting(server, 'cmds:') === 2);
      const queuedAt = performance.now();
      const id = await commands.queue(dev.id, 'supervisor', { method: 'GET', path: '/ping' }, 10_000);
      const first = await Promise.race(polls);
      const latency = performance.now() - queuedAt;
      const answers = await Promise.all(polls);
      assert.deepEqual(answers.map((a) => a.status).sort(), [200, 204]);
      assert.deepEqual(
        answers.flatMap((a) => a.commands),
        [{ id, kind: 'supervisor', payload: { method: 'GET', path: '/ping' } }],
      );
      assert.equal(first.status, 200);
      t.diagnostic(`${backend.name}: command queued → waiting poll answered in ${latency.toFixed(1)} ms`);
      assert.ok(latency < 500);

      // 30 commands, 10 polls at once: each command in exactly one answer, in queue order within it
      const ids: number[] = [];
      for (let i = 0; i < 30; i++) ids.push(await commands.queue(dev.id, 'supervisor', { method: 'GET', path: `/v1/n/${i}` }, 10_000));
      const raced = await Promise.all(Array.from({ length: 10 }, () => link.commands(0)));
      const got = raced.flatMap((r) => r.commands.map((c) => c.id));
      assert.deepEqual(
        [...got].sort((a, b) => a - b),
        ids,
      );
      for (const r of raced)
        assert.deepEqual(
          r.commands.map((c) => c.id),
          [...r.commands.map((c) => c.id)].sort((a, b) => a - b),
        );
      assert.equal((await link.commands(0)).status, 204);
      assert.ok((await commandRows(server, dev.id)).every((r) => r.state === 'delivered'));
    });

    test('results: only the device a command was for may post it (404 for any other), once; a wrong shape is a 400 naming the field', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const a = await newDevice(server);
      const b = await newDevice(server);
      const commands = new DeviceCommands(server.db, server.notifier);
      const id = await commands.queue(a.id, 'supervisor', { method: 'GET', path: '/ping' }, 10_000);
      const [delivered] = (await device(base, a.key).commands(0)).commands;
      assert.equal(delivered!.id, id);

      const stolen = await device(base, b.key).result(id, { status: 200, body: 'forged' });
      assert.equal(stolen.status, 404);
      assert.equal(stolen.body.detail, `no command ${id} for this device`);
      assert.equal((await device(base, a.key).result(id + 1000, { status: 200, body: 'x' })).status, 404);
      assert.equal((await device(base, 'bsd_wrong').result(id, { status: 200, body: 'x' })).status, 401);
      assert.equal((await device(base, server.firstAdminToken!).result(id, { status: 200, body: 'x' })).status, 401, 'a user token is not a device key');
      assert.equal((await fetch(`${base}/device/v1/commands`)).status, 401);

      for (const [body, field] of [
        [{ status: '200', body: 'x' }, '/status'],
        [{ status: 99, body: 'x' }, '/status'],
        [{ status: 200, body: 7 }, '/body'],
        [{ status: 200, body: 'x', headers: { a: 1 } }, '/headers/a'],
        [{ status: 200, body: 'x', extra: 1 }, '/extra'],
        [{ error: '' }, '/error'],
      ] as const) {
        const res = await device(base, a.key).result(id, body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.field, field, JSON.stringify(res.body));
      }
      const bad = await fetch(`${base}/device/v1/commands/abc/result`, {
        method: 'POST',
        headers: { authorization: `Bearer ${a.key}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(bad.status, 400);

      assert.equal((await device(base, a.key).result(id, { status: 200, body: 'OK' })).status, 204);
      assert.equal((await device(base, a.key).result(id, { status: 500, body: 'again' })).status, 204, 'a repeated post (a retry) is fine');
      const stored = await commands.get(id);
      assert.equal(stored!.state, 'done');
      assert.deepEqual(stored!.result, { status: 200, body: 'OK' }, 'the first result stays');
      assert.equal((await device(base, b.key).result(id, { status: 200, body: 'x' })).status, 404, 'still not b');
    });

    test('a bounded queue: at most 100 pending commands per device (then 429); finished commands are deleted after the retention period', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const other = await newDevice(server);
      const commands = new DeviceCommands(server.db, server.notifier, { retentionMs: 60_000 });
      const many = await commands.queueMany(
        Array.from({ length: MAX_PENDING_PER_DEVICE }, () => dev.id),
        'supervisor',
        {},
        60_000,
      );
      assert.equal(many.size, 1, 'one device named many times is queued once');
      for (let i = 1; i < MAX_PENDING_PER_DEVICE; i++) await commands.queue(dev.id, 'supervisor', { i }, 60_000);
      const full = await user(server)('POST', '/supervisor/ping', { uuid: dev.uuid, method: 'GET', timeout: 0.2 });
      assert.equal(full.status, 429);
      assert.match(String(full.body.detail), /100 commands waiting/);
      assert.equal(
        (await user(server)('POST', '/supervisor/ping', { uuid: other.uuid, method: 'GET', timeout: 0.1 })).status,
        504,
        'other devices are not affected',
      );

      // the device takes them all (one answer holds them all, oldest first), and there is room again
      const taken = await device(base, dev.key).commands(0);
      assert.equal(taken.commands.length, MAX_PENDING_PER_DEVICE);
      assert.deepEqual(
        taken.commands.slice(1, 3).map((c) => c.payload),
        [{ i: 1 }, { i: 2 }] as unknown,
      );
      await device(base, dev.key).result(taken.commands[0]!.id, { status: 200, body: 'OK' });
      assert.equal(typeof (await commands.queue(dev.id, 'supervisor', {}, 1)), 'number');

      // housekeeping: past their expiry, unanswered ones expire; long-finished ones are deleted
      await new Promise((r) => setTimeout(r, 5));
      const soon = await commands.sweep();
      assert.equal(soon.expired, 1, 'the 1 ms command');
      assert.equal(soon.deleted, 0);
      const later = await commands.sweep(new Date(Date.now() + 61_000));
      assert.equal(later.expired, MAX_PENDING_PER_DEVICE - 1, 'the delivered, unanswered ones');
      assert.equal(later.deleted, 2 + 1, 'the done one, the expired one and the one of the other device');
      const afterRetention = await commands.sweep(new Date(Date.now() + 200_000));
      assert.equal(afterRetention.deleted, MAX_PENDING_PER_DEVICE - 1);
      assert.deepEqual(await commandRows(server, dev.id), []);
    });
  });
}
