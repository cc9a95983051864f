// The control plane's state reports (`currentState(true)`) read the engine only when something
// may have changed it: between engine events they take the last apply's read and plan, and the
// settle watch re-inspects a running container without a healthcheck only after an engine event.
// On the real engine; the client is counted, not replaced.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Agent } from '../../src/agent/agent.js';
import { containersOf, converge, docker, execIn, freshAppId, service, startAgent, target, waitFor } from './harness.js';

/** Counts the agent's container lists and inspects while `fn` runs. */
async function engineCalls<T>(agent: Agent, fn: () => Promise<T>): Promise<{ result: T; lists: number; inspects: number }> {
  const client = agent.docker;
  const { listContainers, getContainer } = client;
  let lists = 0;
  let inspects = 0;
  client.listContainers = ((...args: Parameters<typeof listContainers>) => {
    lists++;
    return listContainers.apply(client, args);
  }) as typeof listContainers;
  client.getContainer = (id: string) => {
    const container = getContainer.call(client, id);
    const inspect = container.inspect.bind(container);
    container.inspect = ((...args: Parameters<typeof inspect>) => {
      inspects++;
      return inspect(...args);
    }) as typeof inspect;
    return container;
  };
  try {
    return { result: await fn(), lists, inspects };
  } finally {
    client.listContainers = listContainers;
    client.getContainer = getContainer;
  }
}

/** runs until asked to crash (once: the restarted run goes on) */
const CRASH_ON_ASK = 'while [ ! -e /tmp/crash ]; do sleep 0.2; done; rm /tmp/crash; exit 3';

test('reports reuse the last apply’s read and the running containers’ inspects until an engine event; a crash is seen at once', async (t) => {
  const appId = freshAppId();
  // a long settle period and periodic re-check: nothing but this test makes the agent read the engine
  const { agent } = await startAgent(t, [appId], { settleMs: 600_000, intervalMs: 600_000 });
  await agent.setTarget(target({ [appId]: { releaseId: 1, services: { one: service({ command: ['sh', '-c', CRASH_ON_ASK] }), two: service() } } }), 'test');
  await converge(agent);

  // An attempt counts when no engine event came meanwhile: the last apply's read stayed current.
  // (Other runs share the engine, but the agent follows only its own scope's events.)
  const quiet = await waitFor('a report between engine events', async () => {
    await agent.applyNow();
    const read = agent.reconciler.currentRead();
    if (!read) return undefined;
    const first = await engineCalls(agent, () => agent.currentState(true));
    const second = await engineCalls(agent, () => agent.currentState(true));
    return agent.reconciler.currentRead() === read ? { first, second } : undefined;
  });
  assert.equal(quiet.first.lists, 0, 'the last apply’s read is reused');
  assert.equal(quiet.first.inspects, 2, 'each running container is inspected once, at first sight');
  assert.deepEqual([quiet.second.lists, quiet.second.inspects], [0, 0], 'and not again while no engine event came');
  assert.equal(quiet.second.result[String(appId)]?.settle, 'settling');
  const fresh = await engineCalls(agent, () => agent.currentState());
  assert.equal(fresh.lists, 1, 'the device API reads the engine afresh');
  agent.reconciler.trigger('a test');
  assert.equal(agent.reconciler.currentRead(), undefined, 'a trigger (a new target, a pull done) makes the next report read afresh');

  // A crash is an engine event. The engine restarts the container (its restart policy) before any
  // report looks, so the list says running again, as before: only the event tells the inspect is stale.
  const one = (await containersOf(appId)).find((c) => c.service === 'one')!;
  await execIn(one.id, ['touch', '/tmp/crash']);
  await waitFor('the engine to restart it', async () => {
    const info = await docker.getContainer(one.id).inspect();
    return info.RestartCount > 0 && info.State.Status === 'running'; // (`Running` is true while restarting too)
  });
  const app = (await agent.currentState(true))[String(appId)]!;
  assert.equal(app.settle, 'failed');
  assert.match(app.services.one!.error ?? '', /^restarted 1 time, running again for \d+ s/);
  assert.equal(app.services.two!.error, null);
});
