// The command poll on each storage backend beside the target-state poll: wake-ups of one leave the
// other waiting; a device hanging up loses nothing, and closing the server answers the held polls.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DeviceCommands } from '../../src/server/commands/deviceCommands.js';
import { backends } from './backends.js';
import { device, listen, newDevice, until, user, waiting } from './helpers.js';

for (const backend of backends()) {
  describe(`device commands and the supervisor proxy on ${backend.name}`, () => {
    test('command wake-ups leave a target-state long poll waiting (304 at the end), and a target change leaves a command poll waiting (204)', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const link = device(base, dev.key);
      const { etag } = await link.state();
      const statePoll = link.state({ etag: etag!, wait: 1 });
      const commandPoll = link.commands(1);
      await until('both polls to wait', () => waiting(server) === 2);

      // a command for the device: its command poll answers, its target-state poll goes on waiting
      const proxied = user(server)('POST', '/supervisor/ping', { uuid: dev.uuid, method: 'GET', timeout: 5 });
      const got = await commandPoll;
      assert.equal(got.status, 200);
      assert.equal((await link.result(got.commands[0]!.id, { status: 200, body: 'OK' })).status, 204);
      assert.equal((await proxied).status, 200);
      const state = await statePoll;
      assert.equal(state.status, 304);
      assert.equal(state.etag, etag);
      assert.ok(state.ms >= 950, `the state poll answered after ${state.ms.toFixed(0)} ms`);

      // a target change: the state poll answers, the command poll goes on waiting
      const statePoll2 = link.state({ etag: etag!, wait: 5 });
      const commandPoll2 = link.commands(1);
      await until('both polls to wait', () => waiting(server) === 2);
      assert.equal((await user(server)('PATCH', `/dongle/devices/${dev.id}/`, { name: 'renamed' })).status, 200);
      assert.equal((await statePoll2).status, 200);
      const idle = await commandPoll2;
      assert.equal(idle.status, 204);
      assert.ok(idle.ms >= 950);
      assert.equal(waiting(server), 0);
    });

    test('a device that hangs up while polling loses nothing; closing the server answers held polls (204) and waiting proxy calls (503) at once', async (t) => {
      const server = await backend.start(t);
      // closed here and again when the test ends: the second close is the first one's
      const closeOnce = server.close.bind(server);
      let closed: Promise<void> | undefined;
      server.close = () => (closed ??= closeOnce());
      const base = await listen(server);
      const dev = await newDevice(server);
      const link = device(base, dev.key);
      const commands = new DeviceCommands(server.db, server.notifier);

      const hangUp = new AbortController();
      const abandoned = link.commands(30, hangUp.signal).catch((e: Error) => e);
      await until('the poll to wait', () => waiting(server, 'cmds:') === 1);
      hangUp.abort();
      assert.ok((await abandoned) instanceof Error);
      await until('the poll to end', () => waiting(server, 'cmds:') === 0);
      const id = await commands.queue(dev.id, 'supervisor', { method: 'GET', path: '/ping' }, 10_000);
      assert.deepEqual(
        (await link.commands(0)).commands.map((c) => c.id),
        [id],
        'the next poll gets it',
      );

      const held = link.commands(60);
      await until('the poll to wait', () => waiting(server, 'cmds:') === 1);
      const proxied = fetch(`${base}/supervisor/ping`, {
        method: 'POST',
        headers: { authorization: `APIToken ${server.firstAdminToken!}`, 'content-type': 'application/json' },
        body: JSON.stringify({ deviceId: (await newDevice(server)).id, method: 'GET', timeout: 60 }),
      });
      await until('the proxy call to wait', () => waiting(server, 'cmd:') === 1);
      const started = performance.now();
      await server.close();
      assert.equal((await held).status, 204);
      const res = await proxied;
      assert.equal(res.status, 503);
      assert.ok(performance.now() - started < 2000, 'close does not wait for the deadlines');
    });
  });
}
