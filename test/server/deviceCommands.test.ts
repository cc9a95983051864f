// The command channel of the device link and the supervisor proxy on it, on each storage backend
// (and across two PostgreSQL nodes): a fake device (plain fetch with its device key) long-polls its
// commands and posts the answers; the proxy returns them. Delivery happens once, results only from
// the device a command was for, silent devices end in 504, and command wake-ups leave target-state
// polls alone.
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { DeviceCommands, MAX_PENDING_PER_DEVICE } from '../../src/server/commands/deviceCommands.js';
import { devicePath } from '../../src/server/routes/supervisorProxy.js';
import type { Server } from '../../src/server/server.js';
import { backends, nodes } from './backends.js';
import { device, listen, newDevice, newProject, until, user, waiting, type Command } from './helpers.js';

type DeviceAnswer = { status: number; body: string; headers?: Record<string, string> } | { error: string } | null;

/**
 * A fake agent: long-polls its commands and answers each with `answer(command)` (null: stays
 * silent). Stops when the test ends.
 */
function fakeAgent(t: TestContext, base: string, key: string, answer: (c: Command) => DeviceAnswer | Promise<DeviceAnswer>) {
  const stop = new AbortController();
  const seen: Command[] = [];
  const link = device(base, key);
  let failure: Error | undefined;
  const loop = (async () => {
    while (!stop.signal.aborted) {
      try {
        const polled = await link.commands(30, stop.signal);
        for (const c of polled.commands) {
          seen.push(c);
          const a = await answer(c);
          if (a) assert.equal((await link.result(c.id, a)).status, 204);
        }
        if (polled.status === 503) return; // the server is closing as the test ends
        if (polled.status !== 200 && polled.status !== 204) throw new Error(`command poll: ${polled.status}`);
      } catch (err) {
        // the server going away as the test ends is no failure of the device
        if (!stop.signal.aborted && !(err instanceof TypeError && err.message === 'fetch failed')) failure = err as Error;
        return;
      }
    }
  })();
  t.after(async () => {
    stop.abort();
    await loop;
    if (failure) throw failure;
  });
  return { seen, loop };
}

/** A device API of sorts, answering the calls the tests make. */
const deviceApi =
  (uuid: string) =>
  (c: Command): DeviceAnswer => {
    const { method, path: p, body } = c.payload;
    if (method === 'GET' && p === '/ping') return { status: 200, body: 'OK', headers: { 'content-type': 'text/plain' } };
    if (method === 'GET' && p === '/v1/device')
      return { status: 200, body: JSON.stringify({ uuid, status: 'Idle', update_pending: false }), headers: { 'content-type': 'application/json' } };
    if (method === 'POST' && p === '/v1/restart')
      return (body as { appId?: number } | undefined)?.appId ? { status: 200, body: 'OK' } : { status: 400, body: 'Missing app id' };
    if (method === 'POST' && p === '/v1/reboot') return { status: 423, body: JSON.stringify({ Data: '', Error: 'Updates are locked' }) };
    if (method === 'POST' && p === '/v1/blink') return { status: 200, body: '' };
    if (p === '/v1/explode') return { error: 'the device API is not running' };
    return { status: 404, body: JSON.stringify({ status: 'failed', message: `no ${method} ${p}` }) };
  };

const commandRows = (server: Server, deviceId: string) =>
  server.db.selectFrom('device_command').selectAll().where('device_id', '=', deviceId).orderBy('id').execute();

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

for (const backend of backends()) {
  describe(`device commands and the supervisor proxy on ${backend.name}`, () => {
    test('by uuid and by deviceId: the call reaches the device as a command and its answer comes back (status, body, content type)', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const agent = fakeAgent(t, base, dev.key, deviceApi(dev.uuid));
      const call = user(server);

      const ping = await call('POST', '/supervisor/ping', { uuid: dev.uuid, method: 'GET' });
      assert.equal(ping.status, 200);
      assert.equal(ping.text, 'OK');
      assert.match(ping.type!, /^text\/plain/);
      assert.deepEqual(agent.seen[0], { id: agent.seen[0]!.id, kind: 'supervisor', payload: { method: 'GET', path: '/ping' } });

      const info = await call('POST', '/supervisor/v1/device', { deviceId: dev.id, method: 'get' });
      assert.equal(info.status, 200);
      assert.match(info.type!, /^application\/json/);
      assert.deepEqual(info.body, { uuid: dev.uuid, status: 'Idle', update_pending: false });

      // POST is the default method; `data` travels as the body
      const restart = await call('POST', '/supervisor/v1/restart', { uuid: dev.uuid.toUpperCase(), data: { appId: 12 } });
      assert.equal(restart.status, 200);
      assert.equal(restart.text, 'OK');
      assert.deepEqual(agent.seen.at(-1)!.payload, { method: 'POST', path: '/v1/restart', body: { appId: 12 } });
      assert.equal((await call('POST', '/supervisor/v1/restart', { uuid: dev.uuid })).status, 400, "the device's 400 is passed on");
      const locked = await call('POST', '/supervisor/v1/reboot', { uuid: dev.uuid });
      assert.equal(locked.status, 423);
      assert.deepEqual(locked.body, { Data: '', Error: 'Updates are locked' });
      const blink = await call('POST', '/supervisor/v1/blink/', { uuid: dev.uuid });
      assert.equal(blink.status, 200);
      assert.equal(blink.text, '');
      const query = await call('POST', '/supervisor/v2/applications/state?verbose=1', { uuid: dev.uuid, method: 'GET' });
      assert.equal(query.status, 404);
      assert.equal(agent.seen.at(-1)!.payload.path, '/v2/applications/state?verbose=1', 'the query string goes along');
      const failed = await call('POST', '/supervisor/v1/explode', { uuid: dev.uuid });
      assert.equal(failed.status, 502);
      assert.match(String(failed.body.detail), /could not run the call: the device API is not running/);

      const rows = await commandRows(server, dev.id);
      assert.ok(rows.every((r) => (r.state === 'done' || r.state === 'failed') && r.delivered_at && r.finished_at));
      assert.deepEqual(JSON.parse(rows[0]!.result!), { status: 200, body: 'OK', headers: { 'content-type': 'text/plain' } });

      // round trip: proxy call → device poll answered → result posted → proxy answers
      const ms: number[] = [];
      for (let i = 0; i < 20; i++) ms.push((await call('POST', '/supervisor/ping', { uuid: dev.uuid, method: 'GET' })).ms);
      t.diagnostic(
        `${backend.name}: proxy round trip through a long-polling device: median ${median(ms).toFixed(1)} ms, max ${Math.max(...ms).toFixed(1)} ms (20 calls)`,
      );
      assert.ok(median(ms) < 250);
    });

    test('appId: 207 with one entry per device of the project, asked in parallel; a silent device has a 504 entry and its command expires', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const project = await newProject(server);
      const talker = await newDevice(server, project);
      const silent = await newDevice(server, project);
      await newDevice(server); // not in the project
      fakeAgent(t, base, talker.key, deviceApi(talker.uuid));
      const quiet = fakeAgent(t, base, silent.key, () => null); // takes commands, never answers

      const res = await user(server)('POST', '/supervisor/v1/device', { appId: project, method: 'GET', timeout: 0.5 });
      assert.equal(res.status, 207);
      assert.ok(res.ms >= 450 && res.ms < 2000, `took ${res.ms.toFixed(0)} ms`);
      assert.deepEqual(res.body, [
        { deviceId: talker.id, uuid: talker.uuid, status: 200, body: { uuid: talker.uuid, status: 'Idle', update_pending: false } },
        { deviceId: silent.id, uuid: silent.uuid, status: 504, body: { detail: `device ${silent.uuid} took the call but did not answer within 0.5 s` } },
      ]);
      assert.equal(quiet.seen.length, 1);
      assert.deepEqual(
        (await commandRows(server, silent.id)).map((r) => r.state),
        ['expired'],
      );
      // too late now: nobody waits for it
      const late = await device(base, silent.key).result(quiet.seen[0]!.id, { status: 200, body: 'late' });
      assert.equal(late.status, 404);
      assert.match(String(late.body.detail), /expired/);

      // text bodies stay text; an appId as a numeric string works too; a project without devices is an empty 207
      const ping = await user(server)('POST', '/supervisor/ping', { appId: String(project), method: 'GET', timeout: 0.3 });
      assert.equal(ping.status, 207);
      assert.deepEqual((ping.body as unknown as { body: unknown }[]).map((e) => e.body)[0], 'OK');
      const empty = await user(server)('POST', '/supervisor/ping', { appId: await newProject(server), method: 'GET' });
      assert.equal(empty.status, 207);
      assert.deepEqual(empty.body, []);
      assert.equal((await user(server)('POST', '/supervisor/ping', { appId: 99999 })).status, 404);
    });

    test('an offline device: 504 once the wait is over, and the command expires (a device coming back later does not run it)', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const res = await user(server)('POST', '/supervisor/v1/reboot', { uuid: dev.uuid, timeout: 0.3 });
      assert.equal(res.status, 504);
      assert.ok(res.ms >= 280 && res.ms < 1500, `took ${res.ms.toFixed(0)} ms`);
      assert.equal(res.body.detail, `device ${dev.uuid} did not take the call within 0.3 s (it is offline, or not polling for commands)`);
      t.diagnostic(`${backend.name}: offline device, timeout 0.3 s → 504 after ${res.ms.toFixed(0)} ms`);
      const rows = await commandRows(server, dev.id);
      assert.deepEqual(
        rows.map((r) => [r.state, r.delivered_at]),
        [['expired', null]],
      );
      assert.equal((await device(base, dev.key).commands(0)).status, 204, 'the expired command is never delivered');
      assert.equal(waiting(server), 0, 'no waiter is left behind');
    });

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

    // one target, a known method, a device API path, known fields (400 naming the field)
    test('validation: 400 naming the field; unknown targets 404; a token is needed', async (t) => {
      const server = await backend.start(t);
      const dev = await newDevice(server);
      const call = user(server);
      const cases: [string, unknown, string][] = [
        ['/supervisor/ping', {}, '/uuid'],
        ['/supervisor/ping', undefined, '/uuid'],
        ['/supervisor/ping', { uuid: dev.uuid, deviceId: dev.id }, '/deviceId'],
        ['/supervisor/ping', { deviceId: dev.id, appId: 1 }, '/appId'],
        ['/supervisor/ping', { uuid: dev.uuid, method: 'HEAD' }, '/method'],
        ['/supervisor/ping', { uuid: dev.uuid, method: 7 }, '/method'],
        ['/supervisor/ping', { uuid: dev.uuid, nope: 1 }, '/nope'],
        ['/supervisor/ping', { uuid: dev.uuid, timeout: 0 }, '/timeout'],
        ['/supervisor/ping', { uuid: dev.uuid, timeout: 301 }, '/timeout'],
        ['/supervisor/ping', { deviceId: 5 }, '/deviceId'],
        ['/supervisor/ping', { appId: 'x' }, '/appId'],
        ['/supervisor/v3/thing', { uuid: dev.uuid }, 'url'],
        ['/supervisor/v1', { uuid: dev.uuid }, 'url'],
        ['/supervisor/etc/passwd', { uuid: dev.uuid }, 'url'],
        ['/supervisor/v1/%2e%2e/x', { uuid: dev.uuid }, 'url'],
        ['/supervisor/v1/a%2Fb', { uuid: dev.uuid }, 'url'],
      ];
      for (const [url, body, field] of cases) {
        const res = await call('POST', url, body);
        assert.equal(res.status, 400, `${url} ${JSON.stringify(body)}: ${res.text}`);
        assert.equal(res.body.field, field, `${url} ${JSON.stringify(body)}: ${res.text}`);
      }
      // dot segments are resolved before routing: this one is not the proxy's
      assert.equal((await call('POST', '/supervisor/v1/../../etc', { uuid: dev.uuid })).status, 404);
      assert.equal((await call('POST', '/supervisor/', { uuid: dev.uuid })).status, 404);
      assert.equal((await call('POST', '/supervisor/ping', { uuid: 'deadbeef00' })).status, 404);
      assert.equal((await call('POST', '/supervisor/ping', { deviceId: 'nope' })).status, 404);
      assert.equal((await call('POST', '/supervisor/ping', { appId: 4242 })).status, 404);
      assert.equal((await call('POST', '/supervisor/ping', { uuid: dev.uuid }, '')).status, 401);
      assert.equal((await call('POST', '/supervisor/ping', { uuid: dev.uuid }, 'APIToken wrong')).status, 401);
      assert.deepEqual(await commandRows(server, dev.id), [], 'nothing was queued');

      assert.equal(devicePath('/supervisor/v2/applications/12/restart-service'), '/v2/applications/12/restart-service');
      assert.equal(devicePath('/supervisor/v1/apps/12/stop?force=true'), '/v1/apps/12/stop?force=true');
      assert.equal(devicePath('/supervisor/ping/'), '/ping');
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

if (process.env.BOSUN_TEST_DATABASE_URL) {
  describe('supervisor proxy across two PostgreSQL nodes', () => {
    test('the proxy call on node A reaches a device polling node B, and its answer comes back to A', async (t) => {
      const [a, b] = (await nodes(t, 'postgres', 2)) as [Server, Server];
      const baseB = await listen(b);
      const dev = await newDevice(a);
      const project = await newProject(a, [dev.id]);
      const agent = fakeAgent(t, baseB, dev.key, deviceApi(dev.uuid));
      await until('the device to poll B', () => waiting(b, 'cmds:') === 1);

      const info = await user(a)('POST', '/supervisor/v1/device', { uuid: dev.uuid, method: 'GET' });
      assert.equal(info.status, 200);
      assert.deepEqual(info.body, { uuid: dev.uuid, status: 'Idle', update_pending: false });
      const restart = await user(a)('POST', '/supervisor/v1/restart', { deviceId: dev.id, data: { appId: project } });
      assert.equal(restart.status, 200);
      assert.equal(restart.text, 'OK');
      const fleet = await user(a)('POST', '/supervisor/ping', { appId: project, method: 'GET' });
      assert.equal(fleet.status, 207);
      assert.deepEqual(fleet.body, [{ deviceId: dev.id, uuid: dev.uuid, status: 200, body: 'OK' }]);
      assert.equal(agent.seen.length, 3);

      const ms: number[] = [];
      for (let i = 0; i < 20; i++) {
        await until('the device to poll B', () => waiting(b, 'cmds:') === 1);
        ms.push((await user(a)('POST', '/supervisor/ping', { uuid: dev.uuid, method: 'GET' })).ms);
      }
      t.diagnostic(
        'postgres, two nodes: proxy call on A → device polling B → answer on A: ' +
          `median ${median(ms).toFixed(1)} ms, max ${Math.max(...ms).toFixed(1)} ms (20 calls)`,
      );
      assert.ok(median(ms) < 500);

      // two polls of one device on two nodes, one command: delivered once
      const commands = new DeviceCommands(a.db, a.notifier);
      const baseA = await listen(a);
      const other = await newDevice(a);
      const polls = [device(baseA, other.key).commands(2), device(baseB, other.key).commands(2)];
      await until('a poll on each node', () => waiting(a, 'cmds:') === 1 && waiting(b, 'cmds:') === 2);
      const id = await commands.queue(other.id, 'supervisor', { method: 'GET', path: '/ping' }, 10_000);
      const answers = await Promise.all(polls);
      assert.deepEqual(answers.map((x) => x.status).sort(), [200, 204]);
      assert.deepEqual(
        answers.flatMap((x) => x.commands.map((c) => c.id)),
        [id],
      );
    });
  });
}
