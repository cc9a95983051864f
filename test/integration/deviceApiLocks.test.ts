// The device API and update locks: reboot and shutdown refused while an app holds its lock, force per
// app, the legacy lock file, and /v1/update's force. Each test runs its own agent on the real engine.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { containersOf, converge, execIn, freshAppId, service, sleep, target, waitFor } from './harness.js';
import { show, deploy, running, envOf, containerOf, hostActions, readIf, oneService, twoServices } from './deviceApiFixture.js';

// another app's force does not override the lock; the app's own force reboots and stops the apps
test('locks: while an app holds updates.lock, reboot and shutdown are 423 and nothing is stopped; force is per app', async (t) => {
  const a = freshAppId();
  const b = freshAppId();
  const d = await deploy(t, { [a]: twoServices(), [b]: oneService() });
  const { api } = d;
  const side = await containerOf(a, 'side');
  // The app takes its lock from inside its container, as balena apps do.
  const lock = await execIn(side.id, ['sh', '-c', 'set -C; echo app > /tmp/balena/updates.lock']);
  assert.equal(lock.exitCode, 0, lock.output);
  const lockFile = path.join(d.dataDir, 'locks', String(a), 'side', 'updates.lock');
  const before = [...(await containersOf(a)), ...(await containersOf(b))];
  const keyA = await api.key(a);
  const keyB = await api.key(b);

  for (const action of ['reboot', 'shutdown']) {
    // B's key may reboot the device, but B's force covers B's own lock only: A's still refuses
    for (const opts of [{ key: keyB }, { key: keyB, json: { force: false } }, { key: keyB, json: { force: true } }, { bearer: keyB, json: { force: true } }]) {
      const r = await api.call('POST', `/v1/${action}`, opts);
      assert.equal(r.status, 423, show(r));
      assert.equal(r.body?.Data, '', show(r));
      assert.equal(typeof r.body?.Error, 'string', show(r));
      assert.ok(r.body.Error.length > 0, show(r));
      assert.match(r.body.Error, new RegExp(`app ${a}\\b`), show(r));
    }
  }
  await sleep(1500);
  assert.deepEqual(await hostActions(d.dataDir), []);
  const during = [...(await containersOf(a)), ...(await containersOf(b))];
  assert.deepEqual(
    during.map((c) => [c.id, c.state]),
    before.map((c) => [c.id, 'running']),
  );
  assert.equal(await readIf(lockFile), 'app\n', "the app's lock is left alone");

  const forced = await api.call('POST', '/v1/reboot', { key: keyA, json: { force: true } });
  assert.equal(forced.status, 202, show(forced));
  assert.deepEqual(forced.body, { Data: 'OK', Error: '' });
  const actions = await waitFor(
    'reboot recorded',
    async () => {
      const all = await hostActions(d.dataDir);
      return all.some((x) => x.action === 'reboot') && all;
    },
    15_000,
  );
  assert.deepEqual(
    actions.map((x) => x.action),
    ['reboot'],
  );
  assert.ok(!Number.isNaN(Date.parse(actions[0]!.at)));
  await waitFor(
    'all apps stopped',
    async () => {
      for (const c of before) if (await running(c.id)) return false;
      return true;
    },
    20_000,
  );
  // A device going down does not bring its apps back.
  await sleep(2500);
  for (const c of [...(await containersOf(a)), ...(await containersOf(b))]) assert.equal(c.state === 'running', false, `${c.service} came back`);
});

test('locks: the legacy /tmp/resin/resin-updates.lock also refuses a reboot', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: oneService() });
  const main = await containerOf(a, 'main');
  assert.equal((await execIn(main.id, ['sh', '-c', 'set -C; echo app > /tmp/resin/resin-updates.lock'])).exitCode, 0);
  const r = await d.api.call('POST', '/v1/reboot', { key: await d.api.key(a) });
  assert.equal(r.status, 423, show(r));
  assert.equal(r.body?.Data, '');
  await sleep(500);
  assert.equal(await running(main.id), true);
  assert.deepEqual(await hostActions(d.dataDir), []);
});

test("locks: /v1/update force from another app's key leaves a held lock alone; the app's own force applies its update, once", async (t) => {
  const a = freshAppId();
  const b = freshAppId();
  const withEnv = (v: string) => ({ [a]: { services: { main: service({ environment: { V: v } }) } }, [b]: oneService() });
  const d = await deploy(t, withEnv('1'));
  const { api } = d;
  const lockIn = async (id: string) => assert.equal((await execIn(id, ['sh', '-c', 'set -C; echo app > /tmp/balena/updates.lock'])).exitCode, 0);
  const held = await containerOf(a, 'main');
  await lockIn(held.id);

  await d.agent.setTarget(target(withEnv('2')), 'test');
  assert.equal(await d.agent.applyNow(), 'waiting');
  assert.equal((await containerOf(a, 'main')).id, held.id, 'the lock holds the update back');

  const byB = await api.call('POST', '/v1/update', { key: await api.key(b), json: { force: true } });
  assert.equal(byB.status, 204, show(byB));
  assert.equal(await d.agent.applyNow(), 'waiting');
  await sleep(1500);
  assert.equal((await containerOf(a, 'main')).id, held.id, "B's force does not override A's lock");
  assert.equal((await envOf(held.id)).V, '1');

  const byA = await api.call('POST', '/v1/update', { key: await api.key(a), json: { force: true } });
  assert.equal(byA.status, 204, show(byA));
  await converge(d.agent);
  const updated = await containerOf(a, 'main');
  assert.notEqual(updated.id, held.id);
  assert.equal((await envOf(updated.id)).V, '2');

  // the override was for that update: the next one waits on the lock again
  await lockIn(updated.id);
  await d.agent.setTarget(target(withEnv('3')), 'test');
  assert.equal(await d.agent.applyNow(), 'waiting');
  await sleep(1500);
  assert.equal((await containerOf(a, 'main')).id, updated.id);
});
