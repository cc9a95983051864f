// Remote execution on each storage backend: a job answered at once with its jid, the command on
// the device link (a fake device with its device key takes it and posts the result), the result
// as GET …/command_result/{jid}/ shows it (pending, done, timed out), callbacks signed with the
// server's callback key and retried after a failure, bad input refused by field; on PostgreSQL, a
// callback delivered by another node than the one that queued the job.
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test, type TestContext } from 'node:test';
import type { Server } from '../../src/server/server.js';
import { backends, nodes } from './backends.js';
import { device, listen, newDevice, until, user } from './helpers.js';

interface Received {
  body: string;
  signature: string | undefined;
}

/** An HTTP receiver for callbacks: answers each with the next of `statuses` (then 200). */
async function receiver(t: TestContext, statuses: number[] = []) {
  const got: Received[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push({ body, signature: req.headers['x-bosun-signature'] as string | undefined });
      res.writeHead(statuses.shift() ?? 200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/bosun`, got };
}

/** What a receiver does with a callback: checks its signature with the key the operator was shown. */
function signedWith(key: string, r: Received): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', key).update(r.body).digest('hex')}`);
  const given = Buffer.from(r.signature ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function callbackKey(server: Server): Promise<string> {
  const res = await user(server)('GET', '/auth/callback-key/');
  assert.equal(res.status, 200);
  assert.match(String(res.body.key), /^bsc_/);
  return String(res.body.key);
}

for (const backend of backends()) {
  describe(`remote execution on ${backend.name}`, () => {
    test('execute answers at once with a jid; the device takes the command over its link and its result comes back', async (t) => {
      const server = await backend.start(t);
      const dev = await newDevice(server);
      const link = device(await listen(server), dev.key);
      const call = user(server);

      const queued = await call('POST', `/dongle/devices/${dev.id}/execute/`, { command: 'docker.logs', arg: ['web'], kwarg: { tail: 10 } });
      assert.equal(queued.status, 200, queued.text);
      assert.match(String(queued.body.jid), /^\d{20}$/);
      assert.deepEqual(queued.body.minions, [dev.uuid]);
      const resultUrl = `/dongle/devices/${dev.id}/command_result/${queued.body.jid}/`;

      const pending = (await call('GET', resultUrl)).body;
      assert.equal(pending.state, 'pending');
      assert.equal(pending.delivered_at, null);
      assert.deepEqual([pending.return, pending.success, pending.retcode, pending.callback], [null, null, null, null]);
      assert.deepEqual([pending.command, pending.arg, pending.kwarg, pending.unit_id], ['docker.logs', ['web'], { tail: 10 }, dev.uuid]);

      const polled = await link.commands(0);
      assert.equal(polled.status, 200);
      assert.deepEqual(
        polled.commands.map((c) => [c.kind, c.payload]),
        [['execute', { command: 'docker.logs', arg: ['web'], kwarg: { tail: 10 } }]],
      );
      const { id } = polled.commands[0]!;
      const running = (await call('GET', resultUrl)).body;
      assert.equal(running.state, 'pending');
      assert.ok(running.delivered_at, 'the job shows the device took the command');

      assert.equal((await link.result(id, { status: 200, body: 'not an execute result' })).status, 400);
      assert.equal((await link.result(id, { return: 'hello\nworld\n', success: true, retcode: 0 })).status, 204);
      assert.equal((await link.result(id, { return: 'again', success: true, retcode: 0 })).status, 204, 'a repeated post is accepted; the first result stays');
      const done = (await call('GET', resultUrl)).body;
      assert.equal(done.state, 'done');
      assert.deepEqual([done.return, done.success, done.retcode], ['hello\nworld\n', true, 0]);
      const [created, delivered, finished] = [done.created_at, done.delivered_at, done.finished_at].map((s) => Date.parse(String(s)));
      assert.ok(created! <= delivered! && delivered! <= finished!, JSON.stringify(done));
      assert.ok(Date.parse(String(done.timeout_at)) - created! >= 599_000, 'without a callback the device has 600 s');
    });

    test('execute_raw reads the command line as Salt does; a command the device could not run is an unsuccessful result', async (t) => {
      const server = await backend.start(t);
      const dev = await newDevice(server);
      const link = device(await listen(server), dev.key);
      const call = user(server);

      const queued = await call('POST', `/dongle/devices/${dev.id}/execute_raw/`, {
        command: 'docker.logs web tail=10 timestamps=True since="2024-05-01 00:00"',
      });
      assert.equal(queued.status, 200, queued.text);
      const [command] = (await link.commands(0)).commands;
      assert.deepEqual(command!.payload, { command: 'docker.logs', arg: ['web'], kwarg: { tail: 10, timestamps: true, since: '2024-05-01 00:00' } });

      assert.equal((await link.result(command!.id, { error: 'the agent stopped' })).status, 204);
      const failed = (await call('GET', `/dongle/devices/${dev.id}/command_result/${queued.body.jid}/`)).body;
      assert.equal(failed.state, 'done');
      assert.deepEqual([failed.success, failed.retcode], [false, 1]);
      assert.match(String(failed.return), /could not run the command: the agent stopped/);
    });

    test('a job the device does not answer times out; its callback says so, signed with the callback key', async (t) => {
      const server = await backend.start(t);
      const dev = await newDevice(server);
      const link = device(await listen(server), dev.key);
      const call = user(server);
      const hook = await receiver(t);

      const queued = await call('POST', `/dongle/devices/${dev.id}/execute/`, { command: 'test.ping', callback_url: hook.url, callback_timeout: 1 });
      assert.equal(queued.status, 200, queued.text);
      await until('the timed-out callback', () => hook.got.length > 0, 8000);
      const body = JSON.parse(hook.got[0]!.body) as Record<string, unknown>;
      assert.equal(body.jid, queued.body.jid);
      assert.deepEqual([body.state, body.success, body.return, body.delivered_at], ['timed_out', false, null, null]);
      assert.ok(signedWith(await callbackKey(server), hook.got[0]!), 'the signature verifies with the callback key');
      assert.ok(!signedWith('another key', hook.got[0]!));

      // the receiver has the request before the server has its answer (and records the delivery)
      let job: Record<string, unknown> = {};
      await until('the delivery recorded', async () => {
        job = (await call('GET', `/dongle/devices/${dev.id}/command_result/${queued.body.jid}/`)).body;
        return Boolean((job.callback as Record<string, unknown>).delivered_at);
      });
      assert.equal(job.state, 'timed_out');
      const cb = job.callback as Record<string, unknown>;
      assert.deepEqual([cb.url, cb.attempts, cb.error], [hook.url, 1, null]);
      assert.equal((await link.commands(0)).status, 204, 'a timed-out command is not run by a device that comes back');
    });

    test('a callback is retried after a failure; a rotated key signs the callbacks from then on', async (t) => {
      const server = await backend.start(t);
      const dev = await newDevice(server);
      const link = device(await listen(server), dev.key);
      const call = user(server);
      const hook = await receiver(t, [500]);
      const key = await callbackKey(server);
      assert.equal(await callbackKey(server), key, 'the key stays until rotated');

      const queued = await call('POST', `/dongle/devices/${dev.id}/execute/`, { command: 'grains.items', callback_url: hook.url, callback_timeout: 600 });
      const [command] = (await link.commands(0)).commands;
      assert.equal((await link.result(command!.id, { return: { id: dev.uuid }, success: true, retcode: 0 })).status, 204);
      await until('the callback, retried', () => hook.got.length >= 2, 10_000);
      assert.equal(hook.got[0]!.body, hook.got[1]!.body, 'the retry sends the same result');
      assert.ok(hook.got.every((r) => signedWith(key, r)));
      const sent = JSON.parse(hook.got[1]!.body) as Record<string, unknown>;
      assert.deepEqual([sent.jid, sent.state, sent.return, sent.success, sent.retcode], [queued.body.jid, 'done', { id: dev.uuid }, true, 0]);
      await until('the delivery recorded', async () => {
        const cb = (await call('GET', `/dongle/devices/${dev.id}/command_result/${queued.body.jid}/`)).body.callback as Record<string, unknown>;
        return cb.attempts === 2 && cb.delivered_at !== null && cb.error === null;
      });

      const rotated = await call('POST', '/auth/callback-key/rotate/');
      assert.equal(rotated.status, 200);
      assert.notEqual(rotated.body.key, key);
      assert.equal(await callbackKey(server), rotated.body.key);
      await call('POST', `/dongle/devices/${dev.id}/execute/`, { command: 'test.ping', callback_url: hook.url });
      const [ping] = (await link.commands(0)).commands;
      await link.result(ping!.id, { return: true, success: true, retcode: 0 });
      await until('the next callback', () => hook.got.length >= 3);
      assert.ok(signedWith(String(rotated.body.key), hook.got[2]!));
      assert.ok(!signedWith(key, hook.got[2]!), 'the old key no longer signs');
    });

    test('bad input is refused naming the field; an unknown device or job is 404', async (t) => {
      const server = await backend.start(t);
      const dev = await newDevice(server);
      const other = await newDevice(server);
      const call = user(server);
      const execute = `/dongle/devices/${dev.id}/execute/`;
      for (const [body, field] of [
        [{}, '/command'],
        [{ command: 'ping' }, '/command'],
        [{ command: 'docker.logs', arg: 'web' }, '/arg'],
        [{ command: 'docker.logs', kwarg: ['tail'] }, '/kwarg'],
        [{ command: 'test.ping', callback_url: 'ftp://example.com/' }, '/callback_url'],
        [{ command: 'test.ping', callback_url: 'http://' }, '/callback_url'],
        [{ command: 'test.ping', callback_url: 'https://user:secret@example.com/hook' }, '/callback_url'],
        [{ command: 'test.ping', callback_url: 'http://example.com/', callback_timeout: 0 }, '/callback_timeout'],
        [{ command: 'test.ping', callback_url: 'http://example.com/', callback_timeout: 601 }, '/callback_timeout'],
        [{ command: 'test.ping', callback_url: 'http://example.com/', callback_timeout: 1.5 }, '/callback_timeout'],
        [{ command: 'test.ping', callback_timeout: 10 }, '/callback_timeout'],
        [{ command: 'test.ping', timeout: 10 }, '/timeout'],
      ] as const) {
        const res = await call('POST', execute, body);
        assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
        assert.equal(res.body.field, field, JSON.stringify(body));
        assert.ok(res.body.detail, JSON.stringify(body));
      }
      for (const [body, field] of [
        [{}, '/command'],
        [{ command: '' }, '/command'],
        [{ command: 'docker.logs "web' }, '/command'],
        [{ command: 'logs web' }, '/command'],
        [{ command: 'test.ping', arg: [] }, '/arg'],
      ] as const) {
        const res = await call('POST', `/dongle/devices/${dev.id}/execute_raw/`, body);
        assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.text}`);
        assert.equal(res.body.field, field, JSON.stringify(body));
      }
      assert.equal((await call('POST', '/dongle/devices/nope/execute/', { command: 'test.ping' })).status, 404);
      assert.equal((await call('POST', execute, { command: 'test.ping' }, '')).status, 401);
      const { jid } = (await call('POST', execute, { command: 'test.ping' })).body;
      assert.equal((await call('GET', `/dongle/devices/${dev.id}/command_result/20000101000000000000/`)).status, 404);
      assert.equal((await call('GET', `/dongle/devices/${other.id}/command_result/${jid}/`)).status, 404, "another device's job is no job of this one");
    });
  });
}

if (process.env.BOSUN_TEST_DATABASE_URL) {
  test('PostgreSQL, two nodes: the callback of a job queued on a node that is gone is delivered by the other', async (t) => {
    const [a, b] = await nodes(t, 'postgres', 2);
    const dev = await newDevice(a!);
    const hook = await receiver(t);
    const queued = await user(a!)('POST', `/dongle/devices/${dev.id}/execute/`, { command: 'test.ping', callback_url: hook.url });
    assert.equal(queued.status, 200, queued.text);
    await a!.close();

    const link = device(await listen(b!), dev.key);
    const [command] = (await link.commands(0)).commands;
    assert.equal((await link.result(command!.id, { return: true, success: true, retcode: 0 })).status, 204);
    await until('the callback from the remaining node', () => hook.got.length > 0);
    const body = JSON.parse(hook.got[0]!.body) as Record<string, unknown>;
    assert.deepEqual([body.jid, body.state, body.return], [queued.body.jid, 'done', true]);
    assert.ok(signedWith(await callbackKey(b!), hook.got[0]!), 'every node signs with the one key');
    assert.equal(hook.got.length, 1);
  });
}
