// Update strategies, update locks, required tags, registry errors and target validation.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { ValidationError } from '../../src/shared/errors.js';
import { containersOf, converge, docker, execIn, forgetImage, freshAppId, image, imagePresent, registry, service, sleep, startAgent, target, waitFor } from './harness.js';


test('a lock held by the app defers the kill until released', async (t) => {
  const appId = freshAppId();
  const { agent, dataDir, logs } = await startAgent(t, [appId]);
  await agent.setTarget(target({ [appId]: { services: { main: service(), side: service() } } }), 'test');
  await converge(agent);
  const [main, side] = await containersOf(appId);
  // The app takes its lock from inside the container, as balena apps do.
  assert.equal((await execIn(side!.id, ['sh', '-c', 'set -C; echo app > /tmp/balena/updates.lock'])).exitCode, 0);

  await agent.setTarget(target({ [appId]: { releaseId: 2, services: { main: service({ environment: { V: '2' } }), side: service() } } }), 'test');
  assert.equal(await agent.applyNow(), 'waiting');
  await sleep(1500);
  assert.equal(await agent.applyNow(), 'waiting');
  assert.deepEqual((await containersOf(appId)).map((c) => [c.id, c.state]), [[main!.id, 'running'], [side!.id, 'running']]);
  assert.ok(logs.some((l) => /Updates are locked by app \d+ .*updates\.lock.*retrying/.test(l)), logs.join('\n'));

  await fs.rm(path.join(dataDir, 'locks', String(appId), 'side', 'updates.lock'));
  await converge(agent);
  const after = await containersOf(appId);
  assert.notEqual(after.find((c) => c.service === 'main')!.id, main!.id);
  assert.equal(after.find((c) => c.service === 'side')!.id, side!.id);
  // The agent's own lock files are gone once the update is done; the app can lock again.
  const left = await fs.readdir(path.join(dataDir, 'locks', String(appId), 'main'));
  assert.deepEqual(left.filter((f) => f.endsWith('.lock')), []);
});

test('SUPERVISOR_OVERRIDE_LOCK forces the update through a held lock', async (t) => {
  const appId = freshAppId();
  const { agent } = await startAgent(t, [appId]);
  await agent.setTarget(target({ [appId]: { services: { main: service() } } }), 'test');
  await converge(agent);
  const [before] = await containersOf(appId);
  await execIn(before!.id, ['sh', '-c', 'set -C; echo app > /tmp/resin/resin-updates.lock']);

  await agent.setTarget(target({ [appId]: { releaseId: 2, services: { main: service({ environment: { V: '2' } }) } } }, { config: { SUPERVISOR_OVERRIDE_LOCK: '1' } }), 'test');
  await converge(agent);
  assert.notEqual((await containersOf(appId))[0]!.id, before!.id);
});

test('hand-over: the old container runs until the new one signals handover-complete', async (t) => {
  const appId = freshAppId();
  const { agent } = await startAgent(t, [appId]);
  const svc = (v: string) => service({ update_strategy: 'hand-over', handover_timeout: 120_000, environment: { V: v } });
  await agent.setTarget(target({ [appId]: { services: { main: svc('1') } } }), 'test');
  await converge(agent);
  const [old] = await containersOf(appId);

  await agent.setTarget(target({ [appId]: { releaseId: 2, services: { main: svc('2') } } }), 'test');
  assert.equal(await agent.applyNow(), 'waiting');
  await sleep(2000);
  assert.equal(await agent.applyNow(), 'waiting');
  const both = await containersOf(appId);
  assert.equal(both.length, 2);
  assert.ok(both.every((c) => c.state === 'running'));
  const fresh = both.find((c) => c.id !== old!.id)!;
  assert.equal((await agent.currentState())[appId]!.services.main!.status, 'Awaiting handover');

  await execIn(fresh.id, ['sh', '-c', 'touch "$BALENA_SERVICE_HANDOVER_COMPLETE_PATH"']);
  await converge(agent);
  assert.deepEqual((await containersOf(appId)).map((c) => c.id), [fresh.id]);
});

test('hand-over: the old container is killed when the timeout passes, not before', async (t) => {
  const appId = freshAppId();
  const { agent } = await startAgent(t, [appId]);
  const svc = (v: string) => service({ update_strategy: 'hand-over', handover_timeout: 4000, environment: { V: v } });
  await agent.setTarget(target({ [appId]: { services: { main: svc('1') } } }), 'test');
  await converge(agent);
  const [old] = await containersOf(appId);

  const started = Date.now();
  await agent.setTarget(target({ [appId]: { releaseId: 2, services: { main: svc('2') } } }), 'test');
  await agent.applyNow();
  assert.equal((await containersOf(appId)).length, 2);
  await waitFor('old container gone', async () => !(await containersOf(appId)).some((c) => c.id === old!.id), 20_000);
  // Creation timestamps have one-second resolution.
  assert.ok(Date.now() - started >= 3000, `killed after ${Date.now() - started} ms`);
});

test('kill-then-download kills before pulling; delete-then-download also deletes the old image', async (t) => {
  const appId = freshAppId();
  const { agent, logs } = await startAgent(t, [appId]);
  await agent.setTarget(target({ [appId]: { services: { a: service({ update_strategy: 'kill-then-download' }) } } }), 'test');
  await converge(agent);
  await forgetImage(image('v2'));
  await agent.setTarget(target({ [appId]: { releaseId: 2, services: { a: service({ image: image('v2'), update_strategy: 'kill-then-download' }) } } }), 'test');
  await converge(agent);
  const kill = logs.findIndex((l) => l.startsWith('Killing service a'));
  const pull = logs.findIndex((l) => l.startsWith(`Downloading image ${image('v2')}`));
  assert.ok(kill >= 0 && pull > kill, logs.join('\n'));

  await agent.setTarget(target({ [appId]: { releaseId: 3, services: { a: service({ image: image('base'), update_strategy: 'delete-then-download' }) } } }), 'test');
  await converge(agent);
  assert.equal(await imagePresent(image('v2')), false, 'the replaced image was deleted');
  assert.equal((await execIn((await containersOf(appId))[0]!.id, ['cat', '/VERSION'])).output.trim(), 'base');
});

test('required tags are pulled before the service starts and survive cleanup', async (t) => {
  const appId = freshAppId();
  await forgetImage(image('base'));
  await forgetImage(image('v1'));
  await forgetImage(image('v2'));
  const { agent } = await startAgent(t, [appId]);
  await agent.setTarget(target({ [appId]: { services: { main: service({ required_tags: ['base'] }) } } }), 'test');
  await converge(agent);
  assert.equal(await imagePresent(image('base')), true);

  await agent.setTarget(target({ [appId]: { releaseId: 2, services: { main: service({ image: image('v2'), required_tags: ['base'] }) } } }), 'test');
  await converge(agent);
  assert.equal(await imagePresent(image('base')), true, 'required tag kept');
  assert.equal(await imagePresent(image('v1')), false, 'unused image the agent pulled is cleaned up');
});

test('a wrong registry password fails that service clearly; the others run', async (t) => {
  const appId = freshAppId();
  await forgetImage(image('v2'));
  const { agent } = await startAgent(t, [appId]);
  const bad = target(
    { [appId]: { services: { good: service(), broken: service({ image: image('v2'), registry: 'wrong' }) } } },
    { registries: { local: registry, wrong: { ...registry, password: 'not-the-password' } } },
  );
  await agent.setTarget(bad, 'test');
  const state = await waitFor('the pull failure to be reported', async () => {
    await agent.applyNow();
    const s = (await agent.currentState())[appId];
    return s?.services.broken?.status === 'Aborted' && s.services.good?.status === 'Running' ? s : undefined;
  });
  assert.match(state.services.broken!.error ?? '', /unauthorized|authentication required|no basic auth/i);
  assert.equal(state.updateStatus, 'aborted');
  assert.equal(state.releaseId, null, 'the release is not recorded as applied');
  assert.deepEqual((await containersOf(appId)).map((c) => [c.service, c.state]), [['good', 'running']]);
});

test('an invalid target is rejected whole with the offending field; running apps are untouched', async (t) => {
  const appId = freshAppId();
  const { agent, dataDir } = await startAgent(t, [appId]);
  const good = target({ [appId]: { services: { main: service() } } });
  await agent.setTarget(good, 'test');
  await converge(agent);
  const before = await containersOf(appId);

  const invalid = structuredClone(good) as unknown as { apps: Record<string, { release: { services: Record<string, Record<string, unknown>> } }> };
  invalid.apps[appId]!.release.services.main!.restart = 'sometimes';
  invalid.apps[appId]!.release.services.other = { image: image('v2') };
  await assert.rejects(agent.setTarget(invalid, 'test'), (err: unknown) => {
    assert.ok(err instanceof ValidationError);
    assert.equal(err.field, `/apps/${appId}/release/services/main/restart`);
    return true;
  });
  assert.deepEqual(agent.getTarget(), good);
  await converge(agent);
  assert.deepEqual(await containersOf(appId), before);

  await agent.stop();
  const again = await startAgent(t, [], { dataDir });
  assert.deepEqual(again.agent.getTarget(), good, 'the stored target is the last valid one');
});

test('restart policy "no": an exited container stays down; one removed by hand comes back', async (t) => {
  const appId = freshAppId();
  const { agent } = await startAgent(t, [appId]);
  await agent.setTarget(target({ [appId]: { services: {
    once: service({ restart: 'no', command: ['sh', '-c', 'sleep 0.3'] }),
    main: service(),
  } } }), 'test');
  await converge(agent);
  await waitFor('once to exit', async () => (await containersOf(appId)).find((c) => c.service === 'once')?.state === 'exited');
  await converge(agent);
  await sleep(1000);
  assert.equal((await containersOf(appId)).find((c) => c.service === 'once')!.state, 'exited');
  assert.equal((await agent.currentState())[appId]!.services.once!.status, 'exited');

  const main = (await containersOf(appId)).find((c) => c.service === 'main')!;
  await docker.getContainer(main.id).remove({ force: true });
  // The engine's destroy event wakes the agent; no explicit apply here.
  const back = await waitFor('main recreated', async () => (await containersOf(appId)).find((c) => c.service === 'main' && c.state === 'running'));
  assert.notEqual(back.id, main.id);
});

test('depends_on: dependencies start first and stop last; running:false stops and true starts again', async (t) => {
  const appId = freshAppId();
  const { agent, logs } = await startAgent(t, [appId]);
  const app = (running: boolean) => ({ services: {
    c: service({ depends_on: ['b'] }),
    b: service({ depends_on: ['a'] }),
    a: service({ running }),
  } });
  await agent.setTarget(target({ [appId]: app(true) }), 'test');
  await converge(agent);
  const started = async () => Object.fromEntries(await Promise.all((await containersOf(appId)).map(async (c) =>
    [c.service, Date.parse((await docker.getContainer(c.id).inspect()).State.StartedAt)] as const)));
  const s = await started();
  assert.ok(s.a! <= s.b! && s.b! <= s.c!, JSON.stringify(s));

  await agent.setTarget(target({ [appId]: { ...app(false), releaseId: 2 } }), 'test');
  await converge(agent);
  const stopped = (await containersOf(appId)).find((c) => c.service === 'a')!;
  assert.equal(stopped.state, 'exited');
  assert.equal((await agent.currentState())[appId]!.services.a!.status, 'Stopped');

  await agent.setTarget(target({ [appId]: { ...app(true), releaseId: 3 } }), 'test');
  await converge(agent);
  const again = (await containersOf(appId)).find((c) => c.service === 'a')!;
  assert.equal(again.id, stopped.id, 'same container, started again');
  assert.equal(again.state, 'running');

  // Removing the app stops dependents before what they depend on.
  await agent.setTarget(target({}), 'test');
  await converge(agent);
  assert.deepEqual(await containersOf(appId), []);
  const kills = logs.filter((l) => /^Killing service [abc]: app removed/.test(l)).map((l) => l.split(' ')[2]);
  assert.deepEqual(kills, ['c:', 'b:', 'a:']);
});
