// Update strategies, update locks, required tags, registry errors and target validation.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { ValidationError } from '../../src/shared/errors.js';
import {
  containersOf,
  converge,
  docker,
  execIn,
  forgetImage,
  freshAppId,
  image,
  imagePresent,
  registry,
  service,
  sleep,
  startAgent,
  target,
  waitFor,
} from './harness.js';
import type { Agent } from '../../src/agent/agent.js';

/** A device API GET with the device key, as a user (or the balena CLI) asks it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function deviceApi(agent: Agent, urlPath: string): Promise<Record<string, any>> {
  const res = await fetch(`http://127.0.0.1:${agent.apiPort()}${urlPath}?apikey=${agent.apiKeys.deviceKey()}`);
  assert.equal(res.status, 200, urlPath);
  return (await res.json()) as Record<string, any>;
}

test('a lock held by the app defers the kill until released; meanwhile the device says it is applying, and why', async (t) => {
  const appId = freshAppId();
  const { agent, dataDir, logs } = await startAgent(t, [appId]);
  await agent.setTarget(target({ [appId]: { services: { main: service(), side: service() } } }), 'test');
  await converge(agent);
  const [main, side] = await containersOf(appId);
  // The app takes its lock from inside the container, as balena apps do.
  assert.equal((await execIn(side!.id, ['sh', '-c', 'set -C; echo app > /tmp/balena/updates.lock'])).exitCode, 0);

  // A new environment in the same release: the release stays recorded as applied, the change is not.
  await agent.setTarget(target({ [appId]: { services: { main: service({ environment: { V: '2' } }), side: service() } } }), 'test');
  assert.equal(await agent.applyNow(), 'waiting');
  await sleep(1500);
  assert.equal(await agent.applyNow(), 'waiting');
  assert.deepEqual(
    (await containersOf(appId)).map((c) => [c.id, c.state]),
    [
      [main!.id, 'running'],
      [side!.id, 'running'],
    ],
  );
  assert.ok(
    logs.some((l) => /Updates are locked by app \d+ .*updates\.lock.*retrying/.test(l)),
    logs.join('\n'),
  );
  const status = await deviceApi(agent, '/v2/state/status');
  assert.equal(status.appState, 'applying', JSON.stringify(status));
  const app = (await deviceApi(agent, '/v2/applications/state'))[`app${appId}`];
  assert.equal(app.updateStatus, 'applying changes', JSON.stringify(app));
  assert.equal(app.services.main.status, 'Running', 'the old container still runs');
  assert.match(app.services.main.waiting ?? '', /^main waits: updates are locked by app \d+/);
  assert.equal(app.services.side.waiting, null);
  // what the control plane is told (it records a deployment as succeeded on `done`)
  assert.equal((await agent.currentState())[appId]!.updateStatus, 'applying changes');

  await fs.rm(path.join(dataDir, 'locks', String(appId), 'side', 'updates.lock'));
  await converge(agent);
  // (an apply the engine's events start may still run for a moment: the CLI, too, asks until it says applied)
  await waitFor('the device to say applied', async () => (await deviceApi(agent, '/v2/state/status')).appState === 'applied');
  const done = (await deviceApi(agent, '/v2/applications/state'))[`app${appId}`];
  assert.equal(done.updateStatus, 'done');
  assert.equal(done.services.main.waiting, null);
  const after = await containersOf(appId);
  assert.notEqual(after.find((c) => c.service === 'main')!.id, main!.id);
  assert.equal(after.find((c) => c.service === 'side')!.id, side!.id);
  // The agent's own lock files are gone once the update is done; the app can lock again.
  const left = await fs.readdir(path.join(dataDir, 'locks', String(appId), 'main'));
  assert.deepEqual(
    left.filter((f) => f.endsWith('.lock')),
    [],
  );
});

test('an idle device whose app holds its lock reads nothing from the engine while it waits, and updates once the lock goes', async (t) => {
  const appId = freshAppId();
  // the default periodic re-check (60 s): only the lock's retries wake the loop here
  const { agent, dataDir, logs } = await startAgent(t, [appId], { intervalMs: 60_000 });
  await agent.setTarget(target({ [appId]: { services: { main: service() } } }), 'test');
  await converge(agent);
  const [main] = await containersOf(appId);
  assert.equal((await execIn(main!.id, ['sh', '-c', 'set -C; echo app > /tmp/balena/updates.lock'])).exitCode, 0);
  const locked = () => logs.filter((l) => /Updates are locked by app \d+/.test(l)).length;
  await agent.setTarget(target({ [appId]: { services: { main: service({ environment: { V: '2' } }) } } }), 'test');
  await waitFor('the loop to find the lock held and end its apply', async () => locked() > 0 && !agent.reconciler.status.applying);

  // every engine read of the agent lists the containers first (engine/readState.ts)
  let reads = 0;
  const list = agent.docker.listContainers.bind(agent.docker);
  agent.docker.listContainers = ((...args: Parameters<typeof list>) => (reads++, list(...args))) as typeof list;
  const before = locked();
  await sleep(4500); // the lock is retried 1 s, then 2 s after the first attempt (backoff 1 s, 2 s, 4 s, ...)
  assert.ok(locked() >= before + 2, `the lock was looked at again while waiting:\n${logs.join('\n')}`);
  assert.equal(reads, 0, 'no engine reads while only the held lock keeps the update waiting');

  await fs.rm(path.join(dataDir, 'locks', String(appId), 'main', 'updates.lock'));
  await waitFor('the update once the lock is released', async () => (await containersOf(appId)).every((c) => c.id !== main!.id), 30_000);
  assert.ok(reads > 0);
});

test('SUPERVISOR_OVERRIDE_LOCK forces the update through a held lock', async (t) => {
  const appId = freshAppId();
  const { agent } = await startAgent(t, [appId]);
  await agent.setTarget(target({ [appId]: { services: { main: service() } } }), 'test');
  await converge(agent);
  const [before] = await containersOf(appId);
  await execIn(before!.id, ['sh', '-c', 'set -C; echo app > /tmp/resin/resin-updates.lock']);

  await agent.setTarget(
    target({ [appId]: { releaseId: 2, services: { main: service({ environment: { V: '2' } }) } } }, { config: { SUPERVISOR_OVERRIDE_LOCK: '1' } }),
    'test',
  );
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
  assert.deepEqual(
    (await containersOf(appId)).map((c) => c.id),
    [fresh.id],
  );
});

test('hand-over: the old container is killed when the timeout, counted from when the new one runs, passes; not before', async (t) => {
  const appId = freshAppId();
  const { agent } = await startAgent(t, [appId]);
  const timeoutMs = 3000;
  const svc = (v: string) => service({ update_strategy: 'hand-over', handover_timeout: timeoutMs, environment: { V: v } });
  await agent.setTarget(target({ [appId]: { services: { main: svc('1') } } }), 'test');
  await converge(agent);
  const [old] = await containersOf(appId);

  // The new container is made late in a second: counted from its creation in whole seconds, the
  // timeout would lose most of a second.
  await sleep((1900 - (Date.now() % 1000)) % 1000);
  const since = Math.floor(Date.now() / 1000) - 1;
  await agent.setTarget(target({ [appId]: { releaseId: 2, services: { main: svc('2') } } }), 'test');
  await agent.applyNow();
  const fresh = (await containersOf(appId)).find((c) => c.id !== old!.id);
  assert.ok(fresh, 'the new container runs beside the old one');
  await waitFor('old container gone', async () => !(await containersOf(appId)).some((c) => c.id === old!.id), 20_000);

  // The engine's own clock on both sides: when the new container started, and when the old one got its first signal.
  const startedNs = nanos((await docker.getContainer(fresh.id).inspect()).State.StartedAt);
  const events = await docker.getEvents({ since, until: Math.ceil(Date.now() / 1000) + 1, filters: { container: [old!.id], event: ['kill', 'stop', 'die'] } });
  let text = '';
  for await (const chunk of events as AsyncIterable<Buffer>) text += chunk.toString();
  const killedNs = text
    .split('\n')
    .filter(Boolean)
    .map((l) => BigInt((JSON.parse(l) as { timeNano: number | string }).timeNano))
    .sort()[0];
  assert.ok(killedNs !== undefined, `the old container's kill is in the engine's events: ${text}`);
  const early = startedNs + BigInt(timeoutMs) * 1_000_000n - killedNs;
  assert.ok(early <= 0n, `killed ${Number(early) / 1e6} ms before the timeout`);
});

/** An engine time (RFC 3339 with nanoseconds) in nanoseconds since the epoch. */
function nanos(iso: string): bigint {
  const m = iso.match(/^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/)!;
  return BigInt(Date.parse(`${m[1]}${m[3]}`)) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0').slice(0, 9));
}

test('an error goes with the attempt that made it: a release back to the running configuration clears it', async (t) => {
  const appId = freshAppId();
  const { agent } = await startAgent(t, [appId]);
  await agent.setTarget(target({ [appId]: { services: { main: service() } } }), 'test');
  await converge(agent);
  const [running] = await containersOf(appId);

  const missing = image('v1').replace(/:v1$/, ':no-such-tag');
  await agent.setTarget(target({ [appId]: { releaseId: 2, services: { main: service({ image: missing }) } } }), 'test');
  const failed = await waitFor('the pull failure to be reported', async () => {
    await agent.applyNow();
    const s = (await agent.currentState())[appId];
    return s?.services.main?.error ? s : undefined;
  });
  assert.match(failed.services.main!.error!, /no-such-tag/);

  await agent.setTarget(target({ [appId]: { releaseId: 3, services: { main: service() } } }), 'test');
  await converge(agent);
  assert.deepEqual(
    (await containersOf(appId)).map((c) => c.id),
    [running!.id],
    'release 3 is what runs',
  );
  const state = (await agent.currentState())[appId]!;
  assert.deepEqual([state.releaseId, state.updateStatus, state.services.main!.status, state.services.main!.error], [3, 'done', 'Running', null]);
  assert.equal((await deviceApi(agent, '/v1/device')).update_failed, false);
});

test('a container that cannot start keeps its error from its first failure while its start is retried', async (t) => {
  const appId = freshAppId();
  const { agent } = await startAgent(t, [appId]);
  await agent.setTarget(target({ [appId]: { services: { main: service({ command: ['/no/such/program'] }) } } }), 'test');
  // one apply creates the container and fails to start it; the container stays, created
  await agent.applyNow();
  assert.deepEqual(
    (await containersOf(appId)).map((c) => c.state),
    ['created'],
  );
  // from then on, and past the first retry (2 s), the plan retries its start and the error stays
  for (const until = Date.now() + 3000; Date.now() < until; await sleep(200)) {
    await agent.applyNow();
    assert.match((await agent.currentState())[appId]!.services.main!.error ?? 'no error', /no\/such\/program/);
  }
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

  await agent.setTarget(
    target({ [appId]: { releaseId: 3, services: { a: service({ image: image('base'), update_strategy: 'delete-then-download' }) } } }),
    'test',
  );
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
  // unused, the image the agent pulled is cleaned up (at a later apply if a container of an earlier
  // test, on its way out, still used it when this one converged)
  await waitFor('the unused v1 image to be cleaned up', async () => {
    await agent.applyNow();
    return !(await imagePresent(image('v1')));
  });
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
  assert.deepEqual(
    (await containersOf(appId)).map((c) => [c.service, c.state]),
    [['good', 'running']],
  );
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
  await agent.setTarget(
    target({
      [appId]: {
        services: {
          once: service({ restart: 'no', command: ['sh', '-c', 'sleep 0.3'] }),
          main: service(),
        },
      },
    }),
    'test',
  );
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
  const app = (running: boolean) => ({
    services: {
      c: service({ depends_on: ['b'] }),
      b: service({ depends_on: ['a'] }),
      a: service({ running }),
    },
  });
  await agent.setTarget(target({ [appId]: app(true) }), 'test');
  await converge(agent);
  const started = async () =>
    Object.fromEntries(
      await Promise.all(
        (await containersOf(appId)).map(async (c) => [c.service, Date.parse((await docker.getContainer(c.id).inspect()).State.StartedAt)] as const),
      ),
    );
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
