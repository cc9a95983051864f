// The device API as apps and users see it: keys and their scope, regenerating a key, update locks
// on reboot/shutdown, host configuration, service actions, purge, errors, and calls made from
// inside the app's own containers. Each test runs its own agent on the real engine.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  containersOf,
  converge,
  docker,
  execIn,
  freshAppId,
  service,
  sleep,
  startAgent,
  target,
  waitFor,
  type AppSpec,
  type TestAgent,
  type TestContainer,
} from './harness.js';

// ---------------------------------------------------------------------------------------------
// helpers

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

interface Res {
  status: number;
  text: string;
  body: Json;
}

interface CallOpts {
  /** sent as `?apikey=` */
  key?: string;
  /** sent as `Authorization: Bearer` */
  bearer?: string;
  /** JSON body */
  json?: unknown;
  /** body sent as is, with a JSON content type */
  raw?: string;
  /** a JSON content type and no body, as the document's curl examples send */
  jsonHeaderOnly?: boolean;
}

interface Api {
  base: string;
  port: number;
  deviceKey(): Promise<string>;
  key(appId: number): Promise<string>;
  call(method: string, urlPath: string, opts?: CallOpts): Promise<Res>;
}

function apiOf(ta: TestAgent): Api {
  const port = ta.agent.apiPort();
  assert.ok(port, 'the agent serves its API');
  const base = `http://127.0.0.1:${port}`;
  return {
    base,
    port,
    deviceKey: async () => ta.agent.apiKeys.deviceKey(),
    key: async (appId) => ta.agent.apiKeys.keyForApp(appId),
    call: async (method, urlPath, opts = {}) => {
      const url = new URL(urlPath, base);
      if (opts.key !== undefined) url.searchParams.set('apikey', opts.key);
      const headers: Record<string, string> = {};
      if (opts.bearer !== undefined) headers.authorization = `Bearer ${opts.bearer}`;
      let body: string | undefined;
      if (opts.json !== undefined) body = JSON.stringify(opts.json);
      if (opts.raw !== undefined) body = opts.raw;
      if (body !== undefined || opts.jsonHeaderOnly) headers['content-type'] = 'application/json';
      const res = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      let parsed: Json;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      return { status: res.status, text, body: parsed };
    },
  };
}

const show = (r: Res) => `${r.status} ${r.text}`;

/** A 4xx (or the given status) with balena's JSON error body and a message. */
function assertFailed(r: Res, status: number, message?: RegExp): void {
  assert.equal(r.status, status, show(r));
  assert.equal(typeof r.body, 'object', `not a JSON body: ${show(r)}`);
  assert.equal(r.body.status, 'failed', show(r));
  assert.equal(typeof r.body.message, 'string', show(r));
  assert.ok(r.body.message.length > 0, show(r));
  if (message) assert.match(r.body.message, message, show(r));
}

function assertClientError(r: Res): void {
  assert.ok(r.status >= 400 && r.status < 500, `expected a 4xx: ${show(r)}`);
  assert.ok(r.body && typeof r.body.message === 'string' && r.body.message.length > 0, `expected a message: ${show(r)}`);
}

const assertOk = (r: Res) => {
  assert.equal(r.status, 200, show(r));
  assert.equal(r.text.trim(), 'OK', show(r));
};

interface Deployed extends TestAgent {
  api: Api;
}

async function deploy(t: TestContext, apps: Record<number, AppSpec>): Promise<Deployed> {
  const ta = await startAgent(t, Object.keys(apps).map(Number));
  await ta.agent.setTarget(target(apps), 'test');
  await converge(ta.agent);
  return { ...ta, api: apiOf(ta) };
}

const inspect = (id: string) => docker.getContainer(id).inspect();
const running = async (id: string) => (await inspect(id)).State.Running;
async function envOf(id: string): Promise<Record<string, string>> {
  const env = (await inspect(id)).Config.Env ?? [];
  return Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}
const byService = (cs: TestContainer[], name: string) => {
  const c = cs.find((x) => x.service === name);
  assert.ok(c, `no container for ${name}: ${JSON.stringify(cs)}`);
  return c;
};
const containerOf = async (appId: number, name: string) => byService(await containersOf(appId), name);

async function hostActions(dataDir: string): Promise<{ action: string; at: string }[]> {
  const text = await fs.readFile(path.join(dataDir, 'host', 'actions.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { action: string; at: string });
}
const readIf = (p: string) => fs.readFile(p, 'utf8').catch(() => undefined);

const oneService = (overrides: Parameters<typeof service>[0] = {}): AppSpec => ({ services: { main: service(overrides) } });
const twoServices = (): AppSpec => ({ services: { main: service(), side: service() } });
const withVolume = (): AppSpec => ({ services: { main: service({ volumes: ['data:/data'] }) }, volumes: { data: {} } });

// ---------------------------------------------------------------------------------------------
// authentication and keys

test('auth: /ping and /v1/healthy need no key; a missing or wrong key is 401 with a JSON message; query and bearer both work', async (t) => {
  const appId = freshAppId();
  const d = await deploy(t, { [appId]: oneService() });
  const { api } = d;
  const appKey = await api.key(appId);
  const deviceKey = await api.deviceKey();

  const ping = await api.call('GET', '/ping');
  assert.equal(ping.status, 200, show(ping));
  assert.equal(ping.text, 'OK');
  assert.equal((await api.call('GET', '/v1/healthy')).status, 200);

  assertFailed(await api.call('GET', '/v1/device'), 401);
  assertFailed(await api.call('GET', '/v1/device', { key: 'wrong' }), 401);
  assertFailed(await api.call('GET', '/v1/device', { key: 'f'.repeat(appKey.length) }), 401);
  assertFailed(await api.call('GET', '/v1/device', { bearer: 'wrong' }), 401);
  assertFailed(await api.call('GET', '/v2/applications/state'), 401);
  assertFailed(await api.call('GET', `/v1/apps/${appId}`, { key: `${appKey}x` }), 401);

  // Nothing happens on the device for an unauthenticated action.
  assertFailed(await api.call('POST', '/v1/blink'), 401);
  assertFailed(await api.call('POST', '/v1/reboot', { key: 'wrong', json: { force: true } }), 401);
  assertFailed(await api.call('POST', `/v2/applications/${appId}/stop-service`, { json: { serviceName: 'main' } }), 401);
  await sleep(300);
  assert.deepEqual(await hostActions(d.dataDir), []);
  assert.equal(await running((await containerOf(appId, 'main')).id), true);

  for (const key of [appKey, deviceKey]) {
    const q = await api.call('GET', '/v1/device', { key });
    assert.equal(q.status, 200, show(q));
    assert.equal(q.body.api_port, api.port);
    const b = await api.call('GET', '/v1/device', { bearer: key });
    assert.equal(b.status, 200, show(b));
    assert.equal((await api.call('GET', `/v1/apps/${appId}`, { bearer: key })).status, 200);
  }
});

test("key scoping: app A's key cannot act on app B (401, nothing happens); the device key works on both", async (t) => {
  const a = freshAppId();
  const b = freshAppId();
  const d = await deploy(t, { [a]: oneService(), [b]: oneService() });
  const { api } = d;
  const keyA = await api.key(a);
  const keyB = await api.key(b);
  assert.notEqual(keyA, keyB);
  assert.notEqual(keyA, await api.deviceKey());
  const bMain = await containerOf(b, 'main');
  const startedB = (await inspect(bMain.id)).State.StartedAt;

  assert.equal((await api.call('GET', `/v1/apps/${a}`, { key: keyA })).status, 200);
  assertFailed(await api.call('GET', `/v1/apps/${b}`, { key: keyA }), 401);
  assertFailed(await api.call('GET', `/v2/applications/${b}/state`, { key: keyA }), 401);
  assertFailed(await api.call('POST', `/v1/apps/${b}/stop`, { key: keyA }), 401);
  assertFailed(await api.call('POST', `/v2/applications/${b}/restart-service`, { key: keyA, json: { serviceName: 'main' } }), 401);
  assertFailed(await api.call('POST', `/v2/applications/${b}/stop-service`, { bearer: keyA, json: { serviceName: 'main' } }), 401);
  assertFailed(await api.call('POST', `/v2/applications/${b}/restart`, { key: keyA }), 401);
  assertFailed(await api.call('POST', `/v2/applications/${b}/purge`, { key: keyA }), 401);
  assertFailed(await api.call('POST', '/v1/restart', { key: keyA, json: { appId: b } }), 401);
  assertFailed(await api.call('POST', '/v1/purge', { key: keyA, json: { appId: b } }), 401);
  await sleep(500);
  const bNow = await inspect(bMain.id);
  assert.equal(bNow.State.Running, true);
  assert.equal(bNow.State.StartedAt, startedB, 'B was not restarted');

  // Each app's own key and the device key do work.
  assert.equal((await api.call('GET', `/v1/apps/${b}`, { key: keyB })).status, 200);
  const deviceKey = await api.deviceKey();
  for (const id of [a, b]) {
    const r = await api.call('GET', `/v1/apps/${id}`, { key: deviceKey });
    assert.equal(r.status, 200, show(r));
    assert.equal(r.body.appId, id);
    assert.equal((await api.call('GET', `/v2/applications/${id}/state`, { key: deviceKey })).status, 200);
  }
  assertOk(await api.call('POST', `/v2/applications/${b}/restart-service`, { key: deviceKey, json: { serviceName: 'main' } }));
  await waitFor('B restarted by the device key', async () => {
    const s = (await inspect(bMain.id)).State;
    return s.Running && s.StartedAt !== startedB;
  });
});

test("regenerate (app key): the old key is rejected at once, the new one works, and the app's containers get it on the next apply", async (t) => {
  const a = freshAppId();
  const b = freshAppId();
  const d = await deploy(t, { [a]: oneService(), [b]: oneService() });
  const { api } = d;
  const oldKey = await api.key(a);
  const keyB = await api.key(b);
  const deviceKey = await api.deviceKey();
  assert.equal((await envOf((await containerOf(a, 'main')).id)).BALENA_SUPERVISOR_API_KEY, oldKey);
  const bBefore = await containerOf(b, 'main');

  const r = await api.call('POST', '/v1/regenerate-api-key', { key: oldKey });
  assert.equal(r.status, 200, show(r));
  const newKey = r.text.trim();
  assert.match(newKey, /^\w+$/);
  assert.notEqual(newKey, oldKey);

  assertFailed(await api.call('GET', '/v1/device', { key: oldKey }), 401);
  assertFailed(await api.call('GET', `/v1/apps/${a}`, { bearer: oldKey }), 401);
  assert.equal((await api.call('GET', '/v1/device', { key: newKey })).status, 200);
  assert.equal((await api.call('GET', `/v1/apps/${a}`, { bearer: newKey })).status, 200);
  // Only the caller's key changed.
  assert.equal((await api.call('GET', `/v1/apps/${b}`, { key: keyB })).status, 200);
  assert.equal((await api.call('GET', '/v1/device', { key: deviceKey })).status, 200);
  assert.equal(await api.key(a), newKey);

  await converge(d.agent);
  const aMain = await containerOf(a, 'main');
  const env = await envOf(aMain.id);
  assert.equal(env.BALENA_SUPERVISOR_API_KEY, newKey);
  assert.equal(env.RESIN_SUPERVISOR_API_KEY, newKey);
  assert.equal(await running(aMain.id), true);
  // The app's new environment works from inside the container.
  const got = await execIn(aMain.id, ['sh', '-c', 'wget -qO- "$BALENA_SUPERVISOR_ADDRESS/v1/device?apikey=$BALENA_SUPERVISOR_API_KEY"']);
  assert.equal(got.exitCode, 0, got.output);
  assert.equal(JSON.parse(got.output).api_port, api.port);
  // The other app is untouched.
  assert.equal((await containerOf(b, 'main')).id, bBefore.id);
  assert.equal((await envOf(bBefore.id)).BALENA_SUPERVISOR_API_KEY, keyB);
});

test('regenerate (device key): the old device key is rejected at once, the new one works, app keys are unaffected', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: oneService() });
  const { api } = d;
  const oldKey = await api.deviceKey();
  const appKey = await api.key(a);
  const r = await api.call('POST', '/v1/regenerate-api-key', { bearer: oldKey });
  assert.equal(r.status, 200, show(r));
  const newKey = r.text.trim();
  assert.match(newKey, /^\w+$/);
  assert.notEqual(newKey, oldKey);
  assertFailed(await api.call('GET', '/v1/device', { key: oldKey }), 401);
  assert.equal((await api.call('GET', `/v1/apps/${a}`, { key: newKey })).status, 200);
  assert.equal(await api.deviceKey(), newKey);
  assert.equal((await api.call('GET', `/v1/apps/${a}`, { key: appKey })).status, 200);
});

// ---------------------------------------------------------------------------------------------
// reboot / shutdown and update locks

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

// ---------------------------------------------------------------------------------------------
// host configuration

// (empty and null clear to defaults; invalid fields are 400)
test('host-config: PATCH hostname and proxy round-trips through GET and the host files', async (t) => {
  const d = await deploy(t, {});
  const { api } = d;
  const key = await api.deviceKey();
  const uuid = d.agent.config.uuid!;
  const hostDir = path.join(d.dataDir, 'host');
  const hostnameFile = path.join(hostDir, 'etc', 'hostname');
  const redsocksFile = path.join(hostDir, 'mnt', 'boot', 'system-proxy', 'redsocks.conf');
  const noProxyFile = path.join(hostDir, 'mnt', 'boot', 'system-proxy', 'no_proxy');
  const get = async () => {
    const r = await api.call('GET', '/v1/device/host-config', { key });
    assert.equal(r.status, 200, show(r));
    return r.body as { network: { hostname: string; proxy?: Record<string, unknown> } };
  };
  const patch = (body: unknown) => api.call('PATCH', '/v1/device/host-config', { key, json: body });

  const proxy = { type: 'socks5', ip: '192.168.0.199', port: 8123, login: 'user', password: 'secret', noProxy: ['152.10.30.4', '253.1.1.0/16'] };
  assertOk(await patch({ network: { hostname: 'bosun-test-host', proxy } }));
  let got = await get();
  assert.equal(got.network.hostname, 'bosun-test-host');
  const p = got.network.proxy!;
  assert.ok(p, JSON.stringify(got));
  assert.equal(p.type, 'socks5');
  assert.equal(p.ip, '192.168.0.199');
  assert.equal(Number(p.port), 8123);
  assert.equal(p.login, 'user');
  assert.ok(!('password' in p), `the proxy password is never answered: ${JSON.stringify(got)}`);
  assert.ok(!JSON.stringify(got).includes('secret'));
  assert.deepEqual(p.noProxy, proxy.noProxy);
  assert.equal((await readIf(hostnameFile))?.trim(), 'bosun-test-host');
  const conf = (await readIf(redsocksFile)) ?? '';
  assert.match(conf, /\btype\s*=\s*socks5\s*;/);
  assert.match(conf, /\bip\s*=\s*192\.168\.0\.199\s*;/);
  assert.match(conf, /\bport\s*=\s*8123\s*;/);
  assert.match(conf, /\blogin\s*=\s*"?user"?\s*;/);
  assert.match(conf, /\bpassword\s*=\s*"?secret"?\s*;/);
  assert.deepEqual(
    ((await readIf(noProxyFile)) ?? '')
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean),
    proxy.noProxy,
  );

  // Absent fields are left as they are.
  assertOk(await patch({ network: { hostname: 'second-host' } }));
  got = await get();
  assert.equal(got.network.hostname, 'second-host');
  assert.deepEqual(got.network.proxy, p);
  assertOk(await patch({ network: { proxy: { ...proxy, port: 8124 } } }));
  got = await get();
  assert.equal(got.network.hostname, 'second-host');
  assert.equal(Number(got.network.proxy?.port), 8124);
  assert.match((await readIf(redsocksFile)) ?? '', /\bport\s*=\s*8124\s*;/);

  // Invalid values are refused whole, naming the field; nothing changes.
  const before = await get();
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ proxy: { ...proxy, type: 'ftp' } }, /\btype\b/],
    [{ proxy: { ...proxy, ip: 42 } }, /\bip\b/],
    [{ proxy: { ...proxy, ip: 'my proxy' } }, /\bip\b/],
    [{ proxy: { ...proxy, port: 70000 } }, /\bport\b/],
    [{ proxy: { ...proxy, port: 'eighty' } }, /\bport\b/],
    [{ proxy: { ...proxy, noProxy: '1.2.3.4' } }, /noProxy/],
    [{ proxy: { ...proxy, noProxy: [42] } }, /noProxy/],
    [{ hostname: 42 }, /hostname/],
  ];
  for (const [network, field] of bad) {
    // A valid hostname beside the invalid field: the request is refused whole.
    assertFailed(await patch({ network: { hostname: 'must-not-be-applied', ...network } }), 400, field);
  }
  assertFailed(await api.call('PATCH', '/v1/device/host-config', { key, raw: '{"network": {' }), 400);
  assert.deepEqual(await get(), before);
  assert.equal((await readIf(hostnameFile))?.trim(), 'second-host');

  // Empty values clear to the defaults: the first 7 characters of the uuid, and no proxy.
  assertOk(await patch({ network: { hostname: '' } }));
  got = await get();
  assert.equal(got.network.hostname, uuid.slice(0, 7));
  assert.equal((await readIf(hostnameFile))?.trim(), uuid.slice(0, 7));
  assert.equal(Number(got.network.proxy?.port), 8124, 'the proxy is untouched');
  assertOk(await patch({ network: { proxy: {} } }));
  got = await get();
  assert.ok(got.network.proxy === undefined || Object.keys(got.network.proxy).length === 0, JSON.stringify(got));
  assert.equal(got.network.hostname, uuid.slice(0, 7));
  assert.ok(!((await readIf(redsocksFile)) ?? '').includes('192.168.0.199'), 'redsocks.conf no longer names the proxy');
  assert.equal(((await readIf(noProxyFile)) ?? '').trim(), '');

  // null clears too.
  assertOk(await patch({ network: { hostname: 'third-host', proxy } }));
  assert.equal((await get()).network.hostname, 'third-host');
  assertOk(await patch({ network: { hostname: null, proxy: null } }));
  got = await get();
  assert.equal(got.network.hostname, uuid.slice(0, 7));
  assert.ok(got.network.proxy === undefined || Object.keys(got.network.proxy).length === 0, JSON.stringify(got));
});

// ---------------------------------------------------------------------------------------------
// service actions

test('v2 stop-service / start-service / restart-service act on one service; restart keeps the container and changes StartedAt', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: twoServices() });
  const { api } = d;
  const key = await api.key(a);
  const main = await containerOf(a, 'main');
  const side = await containerOf(a, 'side');

  assertOk(await api.call('POST', `/v2/applications/${a}/stop-service`, { key, json: { serviceName: 'main' } }));
  assert.equal(await running(main.id), false);
  assert.equal(await running(side.id), true);
  // The reconciler leaves a stopped service stopped.
  await sleep(2500);
  await d.agent.applyNow();
  assert.equal(await running(main.id), false);
  assert.equal((await containerOf(a, 'main')).id, main.id, 'stopped, not removed');
  const state = await api.call('GET', '/v2/applications/state', { key });
  assert.notEqual(state.body[`app${a}`].services.main.status, 'Running', show(state));
  assert.equal(state.body[`app${a}`].services.side.status, 'Running', show(state));

  assertOk(await api.call('POST', `/v2/applications/${a}/start-service`, { key, json: { serviceName: 'main' } }));
  assert.equal(await running(main.id), true);
  assert.equal((await containerOf(a, 'main')).id, main.id);

  const startedAt = (await inspect(main.id)).State.StartedAt;
  const sideStartedAt = (await inspect(side.id)).State.StartedAt;
  assertOk(await api.call('POST', `/v2/applications/${a}/restart-service`, { bearer: key, json: { serviceName: 'main', force: true } }));
  const after = await inspect(main.id);
  assert.equal(after.State.Running, true);
  assert.notEqual(after.State.StartedAt, startedAt);
  assert.equal((await containerOf(a, 'main')).id, main.id, 'restart keeps the container');
  assert.equal((await inspect(side.id)).State.StartedAt, sideStartedAt, 'the other service is not restarted');
});

test('a stopped service stays stopped across a new target with an unrelated change, until start-service; an agent restart starts it again', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: twoServices() });
  const { api } = d;
  const key = await api.key(a);
  const main = await containerOf(a, 'main');
  const side = await containerOf(a, 'side');
  assertOk(await api.call('POST', `/v2/applications/${a}/stop-service`, { key, json: { serviceName: 'main' } }));

  await d.agent.setTarget(target({ [a]: { releaseId: 2, services: { main: service(), side: service({ environment: { V: '2' } }) } } }), 'test');
  await converge(d.agent);
  const side2 = await containerOf(a, 'side');
  assert.notEqual(side2.id, side.id, 'the changed service was updated');
  assert.equal(await running(side2.id), true);
  assert.equal((await containerOf(a, 'main')).id, main.id);
  assert.equal(await running(main.id), false, 'the stopped service stays stopped');
  await sleep(1500);
  assert.equal(await running(main.id), false);

  // Agent restart (as a supervisor restart or reboot would): the service runs again.
  await d.agent.stop();
  const second = await startAgent(t, [], { dataDir: d.dataDir });
  await converge(second.agent);
  await waitFor('main running after an agent restart', async () => {
    const c = (await containersOf(a)).find((x) => x.service === 'main');
    return c && (await running(c.id));
  });
});

test('v1 apps stop/start on a single-container app: containerId answered, stop survives reconciles, start runs it again', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: oneService({ environment: { FOO: 'bar' } }) });
  const { api } = d;
  const key = await api.key(a);
  const main = await containerOf(a, 'main');

  const stop = await api.call('POST', `/v1/apps/${a}/stop`, { key });
  assert.equal(stop.status, 200, show(stop));
  assert.equal(typeof stop.body.containerId, 'string');
  assert.ok(main.id.startsWith(stop.body.containerId), show(stop));
  assert.equal(await running(main.id), false);
  await sleep(2500);
  assert.equal(await running(main.id), false);

  const info = await api.call('GET', `/v1/apps/${a}`, { key });
  assert.equal(info.status, 200, show(info));
  assert.equal(info.body.appId, a);
  assert.equal(info.body.commit, 'commit1');
  assert.equal(info.body.env.FOO, 'bar');
  for (const hidden of ['BALENA_SUPERVISOR_API_KEY', 'RESIN_SUPERVISOR_API_KEY', 'BOSUN_SUPERVISOR_API_KEY']) {
    assert.equal(info.body.env[hidden], undefined, `${hidden} is not shown (balena hides the API keys)`);
  }

  const start = await api.call('POST', `/v1/apps/${a}/start`, { key });
  assert.equal(start.status, 200, show(start));
  assert.ok(main.id.startsWith(start.body.containerId), show(start));
  assert.equal(await running(main.id), true);
});

test('restart: v1 /restart and v2 /applications/:appId/restart restart every service of the app', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: twoServices() });
  const { api } = d;
  const key = await api.key(a);
  const stamp = async () => Promise.all((await containersOf(a)).map(async (c) => `${c.id}@${(await inspect(c.id)).State.StartedAt}`));
  const allRunning = async () => {
    const cs = await containersOf(a);
    return cs.length === 2 && (await Promise.all(cs.map((c) => running(c.id)))).every(Boolean);
  };

  let before = await stamp();
  assertOk(await api.call('POST', '/v1/restart', { key, json: { appId: a } }));
  await waitFor('all restarted (v1)', async () => {
    const now = await stamp();
    return (await allRunning()) && now.every((s) => !before.includes(s));
  });

  before = await stamp();
  assertOk(await api.call('POST', `/v2/applications/${a}/restart`, { key, json: {} }));
  await waitFor('all restarted (v2)', async () => {
    const now = await stamp();
    return (await allRunning()) && now.every((s) => !before.includes(s));
  });
});

for (const how of ['v1', 'v2'] as const) {
  test(`purge (${how}): the app's volume is emptied and the service runs again`, async (t) => {
    const a = freshAppId();
    const d = await deploy(t, { [a]: withVolume() });
    const { api } = d;
    const key = await api.key(a);
    const main = await containerOf(a, 'main');
    assert.equal((await execIn(main.id, ['sh', '-c', 'echo precious > /data/file'])).exitCode, 0);

    if (how === 'v1') {
      const r = await api.call('POST', '/v1/purge', { key, json: { appId: a } });
      assert.equal(r.status, 200, show(r));
      assert.deepEqual(r.body, { Data: 'OK', Error: '' });
    } else {
      assertOk(await api.call('POST', `/v2/applications/${a}/purge`, { key, json: {} }));
    }
    const again = await waitFor('main running after purge', async () => {
      const c = (await containersOf(a)).find((x) => x.service === 'main');
      return c && (await running(c.id)) && c;
    });
    const ls = await execIn(again.id, ['sh', '-c', 'ls -A /data']);
    assert.equal(ls.exitCode, 0, ls.output);
    assert.equal(ls.output.trim(), '', 'the volume is empty');
    assert.equal((await execIn(again.id, ['sh', '-c', 'echo new > /data/file'])).exitCode, 0, 'the volume is usable');
  });
}

test('action POSTs without a body (with or without a JSON content type) are accepted, as balena accepts them', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: oneService() });
  const { api } = d;
  const key = await api.key(a);
  for (const jsonHeaderOnly of [false, true]) {
    const update = await api.call('POST', '/v1/update', { key, jsonHeaderOnly });
    assert.equal(update.status, 204, `POST /v1/update: ${show(update)}`);
    const stop = await api.call('POST', `/v1/apps/${a}/stop`, { key, jsonHeaderOnly });
    assert.equal(stop.status, 200, `POST /v1/apps/:appId/stop: ${show(stop)}`);
    const start = await api.call('POST', `/v1/apps/${a}/start`, { key, jsonHeaderOnly });
    assert.equal(start.status, 200, `POST /v1/apps/:appId/start: ${show(start)}`);
    for (const action of ['restart', 'purge']) {
      const r = await api.call('POST', `/v2/applications/${a}/${action}`, { key, jsonHeaderOnly });
      assert.equal(r.status, 200, `POST /v2/applications/:appId/${action}: ${show(r)}`);
      await waitFor(`main running after ${action}`, async () => {
        const c = (await containersOf(a)).find((x) => x.service === 'main');
        // the container listed may be gone by the time it is inspected (purge removes, the apply recreates)
        return c && (await running(c.id).catch(() => false));
      });
    }
  }
});

// ---------------------------------------------------------------------------------------------
// errors

test('malformed bodies, bad or unknown app ids and unknown services get a 4xx with a message, never a 5xx', async (t) => {
  const a = freshAppId();
  const unknown = freshAppId();
  const d = await deploy(t, { [a]: oneService() });
  const { api } = d;
  const key = await api.deviceKey();
  const main = await containerOf(a, 'main');

  // Malformed JSON.
  assertFailed(await api.call('POST', '/v1/purge', { key, raw: '{not json' }), 400);
  assertFailed(await api.call('POST', `/v2/applications/${a}/restart-service`, { key, raw: '{"serviceName":' }), 400);
  assertFailed(await api.call('POST', '/v1/reboot', { key, raw: '{"force": tru' }), 400);
  // Missing or non-numeric app ids.
  assertFailed(await api.call('POST', '/v1/purge', { key, json: {} }), 400);
  assertFailed(await api.call('POST', '/v1/restart', { key, json: {} }), 400);
  assertFailed(await api.call('POST', '/v1/purge', { key, json: { appId: 'abc' } }), 400);
  assertFailed(await api.call('POST', '/v1/restart', { key, json: { appId: 'abc' } }), 400);
  assertFailed(await api.call('POST', '/v2/applications/abc/restart-service', { key, json: { serviceName: 'main' } }), 400);
  assertFailed(await api.call('GET', '/v2/applications/abc/state', { key }), 400);
  assertFailed(await api.call('GET', '/v1/apps/abc', { key }), 400);
  // An app that is not on the device.
  for (const action of ['restart-service', 'stop-service', 'start-service']) {
    assertFailed(await api.call('POST', `/v2/applications/${unknown}/${action}`, { key, json: { serviceName: 'main' } }), 404);
  }
  assertFailed(await api.call('POST', `/v2/applications/${unknown}/restart`, { key, json: {} }), 404);
  assertFailed(await api.call('POST', `/v2/applications/${unknown}/purge`, { key, json: {} }), 404);
  assertFailed(await api.call('GET', `/v2/applications/${unknown}/state`, { key }), 409);
  assertClientError(await api.call('GET', `/v1/apps/${unknown}`, { key }));
  assertClientError(await api.call('POST', `/v1/apps/${unknown}/stop`, { key }));
  assertClientError(await api.call('POST', '/v1/restart', { key, json: { appId: unknown } }));
  assertClientError(await api.call('POST', '/v1/purge', { key, json: { appId: unknown } }));
  // Unknown or missing service names.
  for (const action of ['restart-service', 'stop-service', 'start-service']) {
    assertFailed(await api.call('POST', `/v2/applications/${a}/${action}`, { key, json: { serviceName: 'nope' } }), 404);
    assertFailed(await api.call('POST', `/v2/applications/${a}/${action}`, { key, json: {} }), 400);
  }
  assertClientError(await api.call('POST', `/v2/applications/${a}/restart-service`, { key, json: { serviceName: 5 } }));
  const cid = await api.call('GET', '/v2/containerId?serviceName=nope', { key });
  assertFailed(cid, 503);
  // Unknown route.
  assert.equal((await api.call('GET', '/v1/nothing-here', { key })).status, 404);

  // None of it touched the app or the agent.
  assert.equal((await containerOf(a, 'main')).id, main.id);
  assert.equal(await running(main.id), true);
  assert.equal((await api.call('GET', '/v1/healthy')).status, 200);
});

// ---------------------------------------------------------------------------------------------
// reads

test('reads: /v1/device has every field true to the agent; v2 version, device name, state, status, containerId, local target', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: { commit: 'c0ffee', services: { main: service() } } });
  const { api } = d;
  const key = await api.key(a);
  const main = await containerOf(a, 'main');

  const dev = await api.call('GET', '/v1/device', { key });
  assert.equal(dev.status, 200, show(dev));
  const b = dev.body;
  assert.equal(b.api_port, api.port);
  for (const f of ['ip_address', 'mac_address', 'os_version', 'supervisor_version', 'status']) assert.equal(typeof b[f], 'string', `${f}: ${show(dev)}`);
  for (const f of ['update_pending', 'update_downloaded', 'update_failed']) assert.equal(b[f], false, `${f}: ${show(dev)}`);
  assert.equal(b.commit, 'c0ffee');
  assert.equal(b.status, 'Idle');
  assert.equal(b.download_progress, null);
  assert.ok('download_progress' in b);

  const version = await api.call('GET', '/v2/version', { key });
  assert.equal(version.status, 200, show(version));
  assert.equal(version.body.status, 'success');
  assert.match(version.body.version, /^\d+\.\d+\.\d+/);
  assert.equal(b.supervisor_version, version.body.version);

  const name = await api.call('GET', '/v2/device/name', { key });
  assert.equal(name.status, 200, show(name));
  assert.equal(name.body.status, 'success');
  assert.equal(typeof name.body.deviceName, 'string');

  const apps = await api.call('GET', '/v2/applications/state', { key });
  assert.equal(apps.status, 200, show(apps));
  const app = apps.body[`app${a}`];
  assert.ok(app, `keyed by app name: ${show(apps)}`);
  assert.equal(app.appId, a);
  assert.equal(app.commit, 'c0ffee');
  assert.equal(app.services.main.status, 'Running');
  assert.equal(app.services.main.releaseId, 1);
  assert.equal(app.services.main.downloadProgress, null);

  const one = await api.call('GET', `/v2/applications/${a}/state`, { key });
  assert.equal(one.status, 200, show(one));
  assert.equal(typeof one.body, 'object');

  const status = await api.call('GET', '/v2/state/status', { key });
  assert.equal(status.status, 200, show(status));
  assert.equal(status.body.status, 'success');
  assert.equal(status.body.appState, 'applied');
  assert.ok(Array.isArray(status.body.containers), show(status));
  const c = status.body.containers.find((x: Json) => x.serviceName === 'main');
  assert.ok(c, show(status));
  assert.equal(c.appId, a);
  assert.ok(main.id.startsWith(c.containerId));
  assert.equal(c.status, 'Running');

  const cid = await api.call('GET', '/v2/containerId?serviceName=main', { key });
  assert.equal(cid.status, 200, show(cid));
  assert.deepEqual(cid.body, { status: 'success', containerId: main.id });
  assert.deepEqual((await api.call('GET', '/v2/containerId?service=main', { key })).body, { status: 'success', containerId: main.id });
  const all = await api.call('GET', '/v2/containerId', { key });
  assert.equal(all.status, 200, show(all));
  assert.equal(all.body.status, 'success');
  assert.equal(all.body.services.main, main.id);

  const local = await api.call('GET', '/v2/local/target-state', { key: await api.deviceKey() });
  assert.equal(local.status, 200, show(local));
  assert.equal(local.body.status, 'success');
  assert.equal(typeof local.body.state, 'object');

  const update = await api.call('POST', '/v1/update', { key, json: { force: true } });
  assert.equal(update.status, 204, show(update));
  assert.equal(update.text, '');
});

// ---------------------------------------------------------------------------------------------
// from inside the app's containers

const twinNames = [
  'APP_ID',
  'APP_NAME',
  'SERVICE_NAME',
  'DEVICE_UUID',
  'DEVICE_TYPE',
  'DEVICE_NAME_AT_INIT',
  'SUPERVISOR_ADDRESS',
  'SUPERVISOR_HOST',
  'SUPERVISOR_PORT',
  'SUPERVISOR_API_KEY',
];

test('in-container call: a bridge-networked busybox service reaches the API with its own env (wget), and its env is complete', async (t) => {
  const a = freshAppId();
  const script = [
    'for i in $(seq 1 30); do',
    '  wget -qO- "$BALENA_SUPERVISOR_ADDRESS/v1/device?apikey=$BALENA_SUPERVISOR_API_KEY" > /tmp/device.json &&',
    '  wget -qO- "$BALENA_SUPERVISOR_ADDRESS/v2/applications/state?apikey=$BALENA_SUPERVISOR_API_KEY" > /tmp/state.json && break;',
    '  sleep 1;',
    'done; exec idle',
  ].join('\n');
  const d = await deploy(t, { [a]: { name: 'caller-app', services: { caller: service({ command: ['sh', '-c', script] }) } } });
  const { api } = d;
  const caller = await containerOf(a, 'caller');

  // What the service's own command fetched when it started.
  const readJson = async (file: string) => {
    const r = await execIn(caller.id, ['cat', file]);
    try {
      return r.exitCode === 0 && (JSON.parse(r.output) as Json);
    } catch {
      return undefined;
    }
  };
  const fetched = await waitFor(
    "the service's own wget of /v1/device and /v2/applications/state",
    async () => {
      const dev = await readJson('/tmp/device.json');
      const st = dev && (await readJson('/tmp/state.json'));
      return st && { dev, st };
    },
    40_000,
  );
  assert.equal(fetched.dev.api_port, api.port);
  assert.equal(fetched.st['caller-app']?.appId, a, JSON.stringify(fetched.st));

  // And again on demand, from the container's network.
  const now = await execIn(caller.id, ['sh', '-c', 'wget -qO- "$BALENA_SUPERVISOR_ADDRESS/v2/applications/state?apikey=$BALENA_SUPERVISOR_API_KEY"']);
  assert.equal(now.exitCode, 0, now.output);
  assert.equal(JSON.parse(now.output)['caller-app'].services.caller.status, 'Running');
  const ping = await execIn(caller.id, ['sh', '-c', 'wget -qO- "$BALENA_SUPERVISOR_ADDRESS/ping"']);
  assert.equal(ping.output.trim(), 'OK');

  // The environment: the address is the gateway of the app's own network.
  const info = await inspect(caller.id);
  const nets = Object.entries(info.NetworkSettings.Networks);
  const appNet = nets.find(([n]) => n.includes(String(a))) ?? nets[0];
  assert.ok(appNet, JSON.stringify(info.NetworkSettings.Networks));
  const gateway = appNet[1].Gateway;
  assert.ok(gateway);
  const env = await envOf(caller.id);
  assert.equal(env.BALENA_SUPERVISOR_HOST, gateway);
  assert.equal(env.BALENA_SUPERVISOR_PORT, String(api.port));
  assert.equal(env.BALENA_SUPERVISOR_ADDRESS, `http://${gateway}:${api.port}`);
  assert.equal(env.BALENA_SUPERVISOR_API_KEY, await api.key(a));
  assert.equal(env.BALENA_APP_ID, String(a));
  assert.equal(env.BALENA_APP_NAME, 'caller-app');
  assert.equal(env.BALENA_SERVICE_NAME, 'caller');
  assert.equal(env.BALENA_DEVICE_UUID, d.agent.config.uuid);
  assert.ok(env.BALENA_DEVICE_TYPE);
  assert.ok(env.BALENA_DEVICE_NAME_AT_INIT);
  assert.equal(env.BALENA, '1');
  assert.equal(env.RESIN, '1');
  for (const n of twinNames) {
    assert.equal(env[`RESIN_${n}`], env[`BALENA_${n}`], `RESIN_${n}`);
    assert.equal(env[`BOSUN_${n}`], env[`BALENA_${n}`], `BOSUN_${n}`);
  }
});

test('in-container call: a host-networked service gets BALENA_SUPERVISOR_ADDRESS=http://127.0.0.1:<port> and reaches the API', async (t) => {
  const a = freshAppId();
  const d = await deploy(t, { [a]: { services: { hostnet: service({ network_mode: 'host' }) } } });
  const { api } = d;
  const c = await containerOf(a, 'hostnet');
  const env = await envOf(c.id);
  assert.equal(env.BALENA_SUPERVISOR_ADDRESS, `http://127.0.0.1:${api.port}`);
  assert.equal(env.BALENA_SUPERVISOR_HOST, '127.0.0.1');
  assert.equal(env.BALENA_SUPERVISOR_PORT, String(api.port));
  assert.equal(env.BALENA_SUPERVISOR_API_KEY, await api.key(a));
  const got = await execIn(c.id, ['sh', '-c', 'wget -qO- "$BALENA_SUPERVISOR_ADDRESS/v1/device?apikey=$BALENA_SUPERVISOR_API_KEY"']);
  assert.equal(got.exitCode, 0, got.output);
  assert.equal(JSON.parse(got.output).api_port, api.port);
});
