// GET /v1/healthy: 200 while the agent works, 500 with the reason when the engine does not answer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startAgent } from './harness.js';

test('healthy with a working engine; 500 naming the engine when it does not answer', async (t) => {
  const good = await startAgent(t, []);
  const ok = await fetch(`http://127.0.0.1:${good.agent.apiPort()}/v1/healthy`);
  assert.equal(ok.status, 200);
  assert.equal(await ok.text(), '');

  const bad = await startAgent(t, [], { dockerHost: 'unix:///nonexistent/docker.sock' });
  const res = await fetch(`http://127.0.0.1:${bad.agent.apiPort()}/v1/healthy`);
  assert.equal(res.status, 500);
  assert.match(await res.text(), /Unhealthy: the Docker Engine does not answer/);
  // the rest of the API still answers, saying what it cannot do
  const device = await fetch(`http://127.0.0.1:${bad.agent.apiPort()}/v2/applications/state?apikey=${bad.agent.apiKeys.deviceKey()}`);
  assert.equal(device.status, 503);
  assert.equal(((await device.json()) as { status: string }).status, 'failed');
});
