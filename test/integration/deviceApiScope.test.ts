// The key-scope table of the device API (README, security), row by row, on a real agent and engine:
// what an app's key (BALENA_SUPERVISOR_API_KEY) may see and do to the device and to another app,
// and what needs the device key. Rows about service actions on another app and regenerating keys are
// in deviceApiAuth.test.ts, reboot/update with force in deviceApiLocks.test.ts; local mode's rows in
// balenaLocalMode.test.ts.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { containersOf, converge, docker, ENGINE_SCOPE, execIn, freshAppId, service, sleep, startAgent, target, waitFor, type AppSpec } from './harness.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

interface Res {
  status: number;
  text: string;
  body: Json;
}

/** A request with any headers (fetch would not send a chosen Host). */
function request(port: number, method: string, urlPath: string, opts: { key?: string; json?: unknown; headers?: Record<string, string> } = {}): Promise<Res> {
  const body = opts.json === undefined ? undefined : JSON.stringify(opts.json);
  const headers: Record<string, string> = {
    ...(body ? { 'content-type': 'application/json' } : {}),
    ...(opts.key ? { authorization: `Bearer ${opts.key}` } : {}),
    ...opts.headers,
  };
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        let parsed: Json;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode!, text, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** NDJSON lines of /v2/local/logs for `ms` milliseconds. */
function streamFor(port: number, key: string, ms: number): Promise<{ status: number; lines: Json[] }> {
  return new Promise((resolve, reject) => {
    const lines: Json[] = [];
    const req = http.get({ host: '127.0.0.1', port, path: '/v2/local/logs', headers: { authorization: `Bearer ${key}` } }, (res) => {
      let buf = '';
      res.on('data', (c: Buffer) => {
        buf += c.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          lines.push(JSON.parse(buf.slice(0, nl)));
          buf = buf.slice(nl + 1);
        }
      });
      setTimeout(() => {
        req.destroy();
        resolve({ status: res.statusCode!, lines });
      }, ms);
    });
    req.on('error', (err) => (lines.length ? undefined : reject(err)));
  });
}

const show = (r: Res) => `${r.status} ${r.text}`;
const printer = (what: string) => service({ command: ['sh', '-c', `trap 'exit 0' TERM; while true; do echo ${what}; sleep 0.3; done`] });

async function hostActions(dataDir: string): Promise<string[]> {
  const text = await fs.readFile(path.join(dataDir, 'host', 'actions.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { action: string }).action);
}

test("key scope: an app's key sees only its own app, acts on the device as balena apps do, and never reaches another app's secrets", async (t) => {
  const a = freshAppId();
  const b = freshAppId();
  const c = freshAppId();
  const apps = (withC: boolean): Record<number, AppSpec> => ({
    [a]: { commit: 'aaaa1111', services: { web: printer(`a-says-${a}`) } },
    [b]: { commit: 'bbbb2222', services: { db: { ...printer(`b-says-${b}`), environment: { DB_PASSWORD: 'b-secret' } } } },
    ...(withC ? { [c]: { services: { old: service({ volumes: ['data:/data'] }) }, volumes: { data: {} } } } : {}),
  });
  const { agent, dataDir } = await startAgent(t, [a, b, c]);
  await agent.setTarget(target(apps(true)), 'test');
  await converge(agent);
  const port = agent.apiPort()!;
  const keyA = agent.apiKeys.keyForApp(a);
  const device = agent.apiKeys.deviceKey();
  const call = (method: string, p: string, opts: Parameters<typeof request>[3] = {}) => request(port, method, p, opts);

  // GET /ping, /v1/healthy: no key
  assert.equal((await call('GET', '/ping')).text, 'OK');
  assert.equal((await call('GET', '/v1/healthy')).status, 200);

  // GET /v2/local/target-state: every app's environment and volume options, the device key only
  const targetA = await call('GET', '/v2/local/target-state', { key: keyA });
  assert.equal(targetA.status, 401, show(targetA));
  assert.ok(!targetA.text.includes('b-secret'), show(targetA));
  const targetDevice = await call('GET', '/v2/local/target-state', { key: device });
  assert.equal(targetDevice.status, 200, show(targetDevice));
  assert.ok(targetDevice.text.includes('b-secret'), 'the device key reads the whole target');

  // POST /v2/local/target-state: the device key only (and only in local mode)
  assert.equal((await call('POST', '/v2/local/target-state', { key: keyA, json: { local: { apps: {} } } })).status, 401);
  assert.equal((await call('POST', '/v2/local/target-state', { key: device, json: { local: { apps: {} } } })).status, 400);

  // GET /v2/local/logs: an app's key streams its own services' lines only; the device key every app's and the agent's
  const [mine, all] = await Promise.all([streamFor(port, keyA, 3000), streamFor(port, device, 3000)]);
  assert.equal(mine.status, 200);
  const services = (ls: Json[]) => new Set(ls.filter((l) => l.serviceName).map((l) => l.serviceName));
  assert.deepEqual([...services(mine.lines)], ['web'], JSON.stringify(mine.lines.slice(0, 5)));
  assert.ok(
    mine.lines.slice(1).every((l) => !l.isSystem && l.appId === a),
    'no system lines, no other app',
  );
  assert.ok(!mine.lines.some((l) => String(l.message).includes(`b-says-${b}`)));
  assert.deepEqual([...services(all.lines)].sort(), ['db', 'web'], 'the device key sees both apps (so B did print meanwhile)');

  // GET /v2/applications/state, /v2/state/status, /v2/containerId, /v1/device: its own app only
  const appState = await call('GET', '/v2/applications/state', { key: keyA });
  assert.deepEqual(Object.keys(appState.body), [`app${a}`], show(appState));
  assert.deepEqual(Object.keys((await call('GET', '/v2/applications/state', { key: device })).body).sort(), [`app${a}`, `app${b}`, `app${c}`].sort());
  const status = await call('GET', '/v2/state/status', { key: keyA });
  assert.deepEqual(
    status.body.containers.map((x: Json) => x.appId),
    [a],
    show(status),
  );
  const ids = await call('GET', '/v2/containerId', { key: keyA });
  assert.deepEqual(Object.keys(ids.body.services), ['web'], show(ids));
  assert.equal((await call('GET', '/v2/containerId?serviceName=db', { key: keyA })).status, 503, "another app's service is not found");
  assert.equal((await call('GET', '/v2/containerId?serviceName=db', { key: device })).status, 200);
  assert.equal((await call('GET', `/v2/applications/${b}/state`, { key: keyA })).status, 401);
  // /v1/device reports the caller's app: B waits on its lock with a new release, A does not
  const bDb = (await containersOf(b))[0]!;
  assert.equal((await execIn(bDb.id, ['sh', '-c', 'set -C; echo app > /tmp/balena/updates.lock'])).exitCode, 0);
  const next = apps(true);
  next[b] = { ...next[b]!, releaseId: 2, commit: 'bbbb3333' };
  next[b]!.services.db!.environment = { DB_PASSWORD: 'b-secret-2' };
  await agent.setTarget(target(next), 'test');
  assert.equal(await agent.applyNow(), 'waiting');
  const devA = await call('GET', '/v1/device', { key: keyA });
  assert.equal(devA.body.update_pending, false, show(devA));
  if ('commit' in devA.body) assert.equal(devA.body.commit, 'aaaa1111');
  assert.equal((await call('GET', '/v1/device', { key: device })).body.update_pending, true);

  // GET /v2/version, /v2/device/name, /v2/device/vpn, /v2/local/device-info: device facts, any key
  for (const p of ['/v2/version', '/v2/device/name', '/v2/device/vpn', '/v2/local/device-info'])
    assert.equal((await call('GET', p, { key: keyA })).status, 200, p);

  // POST /v2/telemetry: any key
  assert.equal((await call('POST', '/v2/telemetry', { key: keyA, json: { field: 'a.temp', type: 'float', value: 21.5 } })).status, 202);

  // POST /v1/blink: any key; a request from another origin's web page is refused whatever the key
  const crossBlink = await call('POST', '/v1/blink', { key: keyA, headers: { origin: 'http://evil.example' } });
  assert.equal(crossBlink.status, 403, show(crossBlink));
  assert.equal((await call('POST', '/v1/blink', { key: keyA, headers: { 'sec-fetch-site': 'cross-site' } })).status, 403);
  await sleep(300);
  assert.deepEqual(await hostActions(dataDir), [], 'nothing blinked');
  assert.equal((await call('POST', '/v1/blink', { key: keyA, headers: { origin: `http://127.0.0.1:${port}` } })).status, 200, 'its own origin is fine');
  await waitFor('the blink', async () => (await hostActions(dataDir)).includes('blink'));

  // GET|PATCH /v1/device/host-config: any key; the proxy password is written to the host, never answered
  const proxy = { type: 'socks5', ip: '10.1.2.3', port: 1080, login: 'user', password: 'proxy-secret' };
  assert.equal((await call('PATCH', '/v1/device/host-config', { key: keyA, json: { network: { proxy } } })).status, 200);
  for (const key of [keyA, device]) {
    const hc = await call('GET', '/v1/device/host-config', { key });
    assert.equal(hc.status, 200, show(hc));
    assert.equal(hc.body.network.proxy.login, 'user');
    assert.ok(!hc.text.includes('proxy-secret'), show(hc));
  }
  assert.match(await fs.readFile(path.join(dataDir, 'host', 'mnt', 'boot', 'system-proxy', 'redsocks.conf'), 'utf8'), /proxy-secret/);

  // GET /v2/cleanup-volumes: an app's key removes only its own app's orphaned volumes (none while it runs)
  await execIn(bDb.id, ['rm', '/tmp/balena/updates.lock']);
  await agent.setTarget(target(apps(false)), 'test');
  await converge(agent);
  const volumesOfC = async () =>
    ((await docker.listVolumes({ filters: { label: [`io.balena.app-id=${c}`, `io.bosun.scope=${ENGINE_SCOPE}`] } })).Volumes ?? []).map((v) => v.Name);
  const orphan = await volumesOfC();
  assert.equal(orphan.length, 1, 'C left the target; its volume is kept until asked');
  const byA = await call('GET', '/v2/cleanup-volumes', { key: keyA });
  assert.deepEqual(byA.body, { status: 'success', removed: [] }, show(byA));
  assert.deepEqual(await volumesOfC(), orphan);
  const byDevice = await call('GET', '/v2/cleanup-volumes', { key: device });
  assert.deepEqual(byDevice.body.removed, orphan, show(byDevice));
  assert.deepEqual(await volumesOfC(), []);
});
