// The local command API (AutoPi's :9000) as a local process, a host-networked container or a web
// page would reach it: a key is required, Host must name loopback (or the configured address),
// other origins are refused, an app's key acts on its own app only, and a caller's regular
// expression cannot freeze the agent. A real agent on the real engine.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
import { converge, containersOf, freshAppId, service, sleep, startAgent, target } from './harness.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

const printer = (what: string) => service({ command: ['sh', '-c', `trap 'exit 0' TERM; echo ${what}; while true; do sleep 1; done`] });

function post(port: number, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test('the local command API: a key, a loopback Host, no other origin; an app key acts on its own app only; last_logs is bounded', async (t) => {
  const a = freshAppId();
  const b = freshAppId();
  const { agent } = await startAgent(t, [a, b], { commandApiPort: 0 });
  await agent.setTarget(target({ [a]: { services: { web: printer('hello from a') } }, [b]: { services: { db: printer('hello from b') } } }), 'file');
  await converge(agent);
  const port = agent.commandApiPort()!;
  const path = `/dongle/${agent.device.uuid}/execute/`;
  const device = { authorization: `Bearer ${agent.apiKeys.deviceKey()}` };
  const keyA = { authorization: `Bearer ${agent.apiKeys.keyForApp(a)}` };
  const run = (body: unknown, headers: Record<string, string>) => post(port, path, body, headers);
  const before = await containersOf(b);

  // no key, a wrong key: 401 and nothing runs
  for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: 'Basic x' }] as Record<string, string>[]) {
    const r = await run({ command: 'supervisor.restart', arg: [b] }, headers);
    assert.equal(r.status, 401, JSON.stringify(r.body));
    assert.match(r.body.detail, /key/);
  }
  // DNS rebinding (a page's domain now resolving to 127.0.0.1) and other origins: 403
  for (const headers of [
    { host: `rebind.evil.example:${port}` },
    { host: `192.168.1.9:${port}` },
    { origin: 'http://evil.example' },
    { 'sec-fetch-site': 'cross-site' },
  ] as Record<string, string>[]) {
    const r = await run({ command: 'supervisor.restart', arg: [b] }, { ...device, ...headers });
    assert.equal(r.status, 403, `${JSON.stringify(headers)}: ${JSON.stringify(r.body)}`);
  }
  await sleep(500);
  assert.deepEqual(await containersOf(b), before, 'B was not restarted');

  // the device key: AutoPi's header scheme and the device API's both work
  assert.deepEqual(await run({ command: 'test.ping' }, { authorization: `APIToken ${agent.apiKeys.deviceKey()}` }), { status: 200, body: true });
  assert.deepEqual(await run({ command: 'test.ping' }, { ...device, host: `localhost:${port}` }), { status: 200, body: true });

  // an app's key: its own containers only
  const ps = await run({ command: 'docker.ps' }, keyA);
  assert.equal(ps.status, 200, JSON.stringify(ps.body));
  assert.deepEqual(
    Object.values(ps.body).map((c: Json) => c.AppId),
    [a],
  );
  assert.deepEqual(
    Object.values((await run({ command: 'docker.ps' }, device)).body)
      .map((c: Json) => c.AppId)
      .sort(),
    [a, b].sort(),
  );
  const ownLogs = await run({ command: 'docker.logs', arg: ['web'] }, keyA);
  assert.match(ownLogs.body, /hello from a/);
  const otherLogs = await run({ command: 'docker.logs', arg: ['db'] }, keyA);
  assert.equal(otherLogs.status, 404, JSON.stringify(otherLogs.body));
  assert.match(otherLogs.body.detail, new RegExp(`no container of app ${a} is named db`));
  const bId = before[0]!.id;
  for (const call of [
    { command: 'docker.stop', arg: [bId] },
    { command: 'docker.restart', arg: ['db'], kwarg: { force: true } },
  ])
    assert.equal((await run(call, keyA)).status, 404, JSON.stringify(call));
  for (const call of [
    { command: 'supervisor.restart', arg: [b] },
    { command: 'supervisor.purge', arg: [b], kwarg: { force: true } },
    { command: 'minionutil.last_logs' },
  ]) {
    const r = await run(call, keyA);
    assert.equal(r.status, 401, `${JSON.stringify(call)}: ${JSON.stringify(r.body)}`);
  }
  await sleep(500);
  assert.deepEqual(await containersOf(b), before, 'B was not touched by A');
  const release = await run({ command: 'docker.release' }, keyA);
  assert.equal(release.status, 200, JSON.stringify(release.body));
  assert.deepEqual(Object.keys(release.body.apps), [String(a)]);

  // last_logs with a catastrophic pattern answers (the device key); a refused pattern names its argument
  // (a line on which a backtracking engine would take 2^40 steps)
  agent.log.info(`padding ${'a'.repeat(40)}!`);
  await sleep(200);
  const evil = await run({ command: 'minionutil.last_logs', kwarg: { match: '(a+)+$', limit: 0 } }, device);
  assert.equal(evil.status, 200, JSON.stringify(evil.body));
  assert.equal(evil.body, '', 'no line ends in a');
  const found = await run({ command: 'minionutil.last_logs', kwarg: { match: '(a+)+!$' } }, device);
  assert.match(found.body, /padding a{40}!/);
  const refused = await run({ command: 'minionutil.last_logs', kwarg: { match: '(a)\\1' } }, device);
  assert.equal(refused.status, 400);
  assert.equal(refused.body.field, '/kwarg/match');
  assert.match(refused.body.detail, /backreferences/);
});
