// Local mode as the balena CLI drives it (`balena push <device>`, `balena device logs <device>`),
// at the HTTP level: the same requests in the same order, against a real agent and engine.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { test } from 'node:test';
import { containersOf, converge, docker, execIn, freshAppId, image, pullTestImage, service, sleep, startAgent, target, waitFor } from './harness.js';

/** The CLI builds `local_image_<service>:latest` on the device's engine; here they are tags of the test image. */
async function localImage(name: string): Promise<string> {
  const ref = `local_image_${name}:latest`;
  const source = image('v1');
  await pullTestImage(source);
  await docker.getImage(source).tag({ repo: `local_image_${name}`, tag: 'latest' });
  return ref;
}

const printer = (what: string) => ['sh', '-c', `trap 'exit 0' TERM; while true; do echo ${what} $GREETING; sleep 1; done`];

/** The v2 local target as the CLI posts it (services keyed by id, `command: null` = image CMD). */
function cliTarget(appId: number, greeting: string) {
  return {
    local: {
      name: 'dev-device',
      config: { SUPERVISOR_LOCAL_MODE: '1' },
      apps: {
        [appId]: {
          name: 'localapp',
          commit: 'local-1',
          releaseId: 1,
          services: {
            '1': {
              serviceName: 'first',
              imageId: 1,
              image: 'local_image_first:latest',
              environment: { GREETING: greeting },
              labels: {},
              volumes: ['data:/data'],
              command: printer('first-says'),
              networks: { default: null },
            },
            '2': {
              serviceName: 'second',
              imageId: 2,
              image: 'local_image_second:latest',
              environment: { GREETING: 'hi' },
              labels: {},
              depends_on: ['first'],
              command: printer('second-says'),
              networks: { default: null },
            },
          },
          volumes: { data: {} },
          networks: { default: { ipam: {} } },
        },
      },
    },
  };
}

async function call(base: string, method: string, path: string, body?: unknown) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, text, json: text.startsWith('{') ? (JSON.parse(text) as Record<string, unknown>) : undefined };
}

/** Reads NDJSON from the log stream until `done` says so (or the time runs out). */
function readLogs(base: string, done: (lines: Record<string, unknown>[]) => boolean, timeoutMs = 20_000): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const lines: Record<string, unknown>[] = [];
    const req = http.get(`${base}/v2/local/logs`, (res) => {
      let buf = '';
      res.on('data', (chunk: Buffer) => {
        buf += chunk.toString();
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
          buf = buf.slice(nl + 1);
        }
        if (done(lines)) {
          req.destroy();
          resolve(lines);
        }
      });
    });
    req.on('error', (err) => (lines.length ? resolve(lines) : reject(err)));
    setTimeout(() => {
      req.destroy();
      resolve(lines);
    }, timeoutMs).unref();
  });
}

test('balena push sequence: no key, version, device info, local target in and out, nothing pulled', async (t) => {
  const appId = freshAppId();
  await localImage('first');
  await localImage('second');
  const { agent, logs } = await startAgent(t, [appId], { localMode: true });
  const base = `http://127.0.0.1:${agent.apiPort()}`;
  assert.ok(
    logs.some((l) => l.startsWith('LOCAL MODE')),
    'local mode is announced in the log',
  );

  assert.equal((await call(base, 'GET', '/ping')).text, 'OK');
  const version = (await call(base, 'GET', '/v2/version')).json!;
  assert.equal(version.status, 'success');
  const [major, minor] = String(version.version).split('.').map(Number);
  assert.ok(major! > 9 || (major === 9 && minor! >= 7), `livepush needs ≥ 9.7.0, got ${String(version.version)}`);
  const info = (await call(base, 'GET', '/v2/local/device-info')).json!;
  assert.deepEqual(Object.keys(info.info as object).sort(), ['arch', 'deviceType']);
  const before = (await call(base, 'GET', '/v2/local/target-state')).json!;
  assert.equal(before.status, 'success');
  assert.ok((before.state as { local?: unknown }).local, 'state.local is there');

  const posted = await call(base, 'POST', '/v2/local/target-state', cliTarget(appId, 'hello'));
  assert.equal(posted.status, 200, posted.text);
  assert.deepEqual(posted.json, { status: 'success', message: 'OK' });
  await converge(agent);
  const cs = await containersOf(appId);
  assert.deepEqual(
    cs.map((c) => [c.service, c.state]),
    [
      ['first', 'running'],
      ['second', 'running'],
    ],
  );
  assert.ok(!logs.some((l) => l.startsWith('Downloading image')), 'images built on the device are not pulled');
  const ping = await execIn(cs.find((c) => c.service === 'second')!.id, ['ping', '-c', '1', '-W', '2', 'first']);
  assert.equal(ping.exitCode, 0, ping.output);
  const after = (await call(base, 'GET', '/v2/local/target-state')).json!;
  assert.deepEqual(Object.keys((after.state as { local: { apps: object } }).local.apps), [String(appId)]);

  // balena push of a changed project: only the changed service is recreated
  await call(base, 'POST', '/v2/local/target-state', cliTarget(appId, 'changed'));
  await converge(agent);
  const cs2 = await containersOf(appId);
  const id = (list: typeof cs, s: string) => list.find((c) => c.service === s)!.id;
  assert.notEqual(id(cs2, 'first'), id(cs, 'first'));
  assert.equal(id(cs2, 'second'), id(cs, 'second'));
});

test('balena device logs: NDJSON, a first system line, then what every service prints', async (t) => {
  const appId = freshAppId();
  await localImage('first');
  await localImage('second');
  const { agent } = await startAgent(t, [appId], { localMode: true });
  const base = `http://127.0.0.1:${agent.apiPort()}`;
  await call(base, 'POST', '/v2/local/target-state', cliTarget(appId, 'hello'));
  await converge(agent);
  const lines = await readLogs(base, (ls) => ['first', 'second'].every((s) => ls.some((l) => l.serviceName === s)));
  assert.deepEqual(lines[0], { message: 'Streaming logs', isSystem: true });
  const first = lines.find((l) => l.serviceName === 'first')!;
  assert.equal(first.message, 'first-says hello');
  assert.equal(first.isSystem, false);
  assert.equal(typeof first.timestamp, 'number');
  assert.ok(lines.some((l) => l.serviceName === 'second' && l.message === 'second-says hi'));

  // system messages of the agent appear too, e.g. a restart through the API
  const system = readLogs(base, (ls) => ls.some((l) => l.isSystem === true && String(l.message).startsWith('Restarting service first')));
  await waitFor('the stream to attach', async () => true);
  await call(base, 'POST', `/v2/applications/${appId}/restart-service`, { serviceName: 'first' });
  assert.ok((await system).some((l) => String(l.message).startsWith('Restarting service first')));
});

test('outside local mode a local target is refused with 400 and the status/message body', async (t) => {
  const { agent } = await startAgent(t, []);
  const base = `http://127.0.0.1:${agent.apiPort()}`;
  const res = await call(base, 'POST', `/v2/local/target-state?apikey=${agent.apiKeys.deviceKey()}`, cliTarget(freshAppId(), 'x'));
  assert.equal(res.status, 400);
  assert.equal(res.json!.status, 'failed');
  assert.match(String(res.json!.message), /local mode/);
  // and the routes need a key outside local mode
  assert.equal((await call(base, 'GET', '/v2/local/target-state')).status, 401);
});

test('leaving local mode returns to the managed target and removes what only local mode created', async (t) => {
  const managedApp = freshAppId();
  const localApp = freshAppId();
  await localImage('first');
  await localImage('second');
  const { agent } = await startAgent(t, [managedApp, localApp]);
  const managed = (local: boolean) => target({ [managedApp]: { services: { main: service() } } }, local ? { config: { SUPERVISOR_LOCAL_MODE: '1' } } : {});
  await agent.setTarget(managed(true), 'cloud');
  assert.equal(agent.localMode(), true);
  const base = `http://127.0.0.1:${agent.apiPort()}`;
  assert.equal((await call(base, 'POST', '/v2/local/target-state', cliTarget(localApp, 'x'))).status, 200);
  await converge(agent);
  assert.equal((await containersOf(localApp)).length, 2);
  assert.equal((await containersOf(managedApp)).length, 0, 'in local mode the local target replaces the managed one');

  await agent.setTarget(managed(false), 'cloud');
  assert.equal(agent.localMode(), false);
  await converge(agent);
  assert.deepEqual(
    (await containersOf(managedApp)).map((c) => c.state),
    ['running'],
  );
  assert.equal((await containersOf(localApp)).length, 0);
  await waitFor(
    'the local app volume to go',
    async () => !(await docker.listVolumes({ filters: { label: [`io.balena.app-id=${localApp}`] } })).Volumes?.length,
  );
  assert.equal((await call(base, 'POST', '/v2/local/target-state', cliTarget(localApp, 'x'))).status, 401, 'keys are required again');
});

/** A request with chosen headers (fetch would not send a chosen Host) and a raw body. */
function rawCall(port: number, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const hostActions = async (dataDir: string) =>
  (await fs.readFile(path.join(dataDir, 'host', 'actions.jsonl'), 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { action: string }).action);

// (web pages of other origins are refused; curl -d forms still work)
test('local mode waives the key for the names the LAN gives the device, not for a rebound domain', async (t) => {
  const { agent, dataDir } = await startAgent(t, [], { localMode: true });
  const port = agent.apiPort()!;
  for (const host of [`127.0.0.1:${port}`, `192.168.1.77:${port}`, `a1b2c3d.local:${port}`, `localhost:${port}`, 'mydevice']) {
    const r = await rawCall(port, 'GET', '/v2/local/target-state', { host });
    assert.equal(r.status, 200, `${host}: ${r.status} ${r.text}`);
  }
  // DNS rebinding: the page's own domain now points at the device
  const rebound = await rawCall(port, 'GET', '/v2/local/target-state', { host: `rebind.evil.example:${port}` });
  assert.equal(rebound.status, 401, rebound.text);
  assert.match(rebound.text, /local mode waives it only/);
  assert.equal(
    (await rawCall(port, 'GET', `/v2/local/target-state?apikey=${agent.apiKeys.deviceKey()}`, { host: `rebind.evil.example:${port}` })).status,
    200,
    'with the device key any Host is fine',
  );

  // a form posted by another origin's page, a no-cors fetch, a cross-site navigation: refused, nothing happens
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  for (const [path, headers, body] of [
    ['/v1/reboot', { ...form, origin: 'http://evil.example' }, 'force=true'],
    ['/v1/shutdown', { ...form, origin: 'null' }, 'force=true'],
    ['/v1/blink', { 'content-type': 'text/plain', origin: `http://192.168.1.50:8080` }, 'x'],
    ['/v1/blink', { 'sec-fetch-site': 'cross-site' }, undefined],
    ['/v1/reboot', { ...form, referer: 'http://evil.example/page' }, 'force=true'],
  ] as const) {
    const r = await rawCall(port, 'POST', path, { host: `192.168.1.77:${port}`, ...headers }, body);
    assert.equal(r.status, 403, `${path} ${JSON.stringify(headers)}: ${r.status} ${r.text}`);
    assert.match(r.text, /cross-origin/);
  }
  assert.equal((await rawCall(port, 'GET', '/v2/cleanup-volumes', { 'sec-fetch-site': 'cross-site' })).status, 403, 'a GET that changes something too');
  await sleep(800);
  assert.deepEqual(await hostActions(dataDir), []);

  // what curl -d sends (a form, no Origin) and the device's own origin are accepted
  const curl = await rawCall(port, 'POST', '/v1/update', { ...form, host: `192.168.1.77:${port}` }, 'force=false');
  assert.equal(curl.status, 204, curl.text);
  const own = await rawCall(port, 'POST', '/v1/blink', { host: `192.168.1.77:${port}`, origin: `http://192.168.1.77:${port}` });
  assert.equal(own.status, 200, own.text);
  await waitFor('the blink', async () => (await hostActions(dataDir)).includes('blink'));
});

test('local mode: a target pushed with force is applied over a held update lock, for that push only', async (t) => {
  const appId = freshAppId();
  await localImage('first');
  await localImage('second');
  const { agent } = await startAgent(t, [appId], { localMode: true });
  const base = `http://127.0.0.1:${agent.apiPort()}`;
  assert.equal((await call(base, 'POST', '/v2/local/target-state', cliTarget(appId, 'hello'))).status, 200);
  await converge(agent);
  const first = async () => (await containersOf(appId)).find((c) => c.service === 'first')!;
  const greeting = async (id: string) => (await docker.getContainer(id).inspect()).Config.Env!.find((e) => e.startsWith('GREETING='));
  const lockIn = async (id: string) => assert.equal((await execIn(id, ['sh', '-c', 'set -C; echo app > /tmp/balena/updates.lock'])).exitCode, 0);
  const held = await first();
  await lockIn(held.id);

  assert.equal((await call(base, 'POST', '/v2/local/target-state', cliTarget(appId, 'changed'))).status, 200);
  assert.equal(await agent.applyNow(), 'waiting');
  assert.equal((await first()).id, held.id, 'the lock holds the push back');

  const bad = await call(base, 'POST', '/v2/local/target-state', { ...cliTarget(appId, 'forced'), force: 'yes' });
  assert.equal(bad.status, 400, bad.text);
  assert.match(bad.text, /force/);

  const forced = await call(base, 'POST', '/v2/local/target-state', { ...cliTarget(appId, 'forced'), force: true });
  assert.equal(forced.status, 200, forced.text);
  await converge(agent);
  const updated = await first();
  assert.notEqual(updated.id, held.id);
  assert.equal(await greeting(updated.id), 'GREETING=forced');

  // the next push without force honours the lock again
  await lockIn(updated.id);
  assert.equal((await call(base, 'POST', '/v2/local/target-state', cliTarget(appId, 'after'))).status, 200);
  assert.equal(await agent.applyNow(), 'waiting');
  await sleep(1500);
  assert.equal((await first()).id, updated.id);
  assert.equal(await greeting(updated.id), 'GREETING=forced');
});
