// Conformance with the balena Supervisor API document: every curl example an app runs on the device
// ("From the app on the device" / "From the user container"), extracted once into
// test/fixtures/balena-supervisor-api-examples.json, is run verbatim with the real curl binary
// against an agent serving a real 1-service app, and the answer is checked against the document:
// status code and body (or its shape where the document's values are volatile).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { containersOf, converge, docker, freshAppId, service, sleep, startAgent, target, waitFor, type TestAgent } from './harness.js';

type Shape = string | { [key: string]: Shape };
interface Example {
  id: string;
  section: string;
  method: string;
  path: string;
  body: string | null;
  apikey: boolean;
  dangerous?: boolean;
  changesKey?: boolean;
  curl: string;
  response: { status: number; type: 'text' | 'json' | 'empty'; body?: unknown; shape?: Shape; match?: string };
  multiContainer?: { status: number };
}

const fixturePath = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'balena-supervisor-api-examples.json');
const examples = (JSON.parse(await fs.readFile(fixturePath, 'utf8')) as { examples: Example[] }).examples;
const example = (id: string): Example => {
  const ex = examples.find((e) => e.id === id);
  if (!ex) throw new Error(`no example ${id} in the fixture`);
  return ex;
};

const execFileP = promisify(execFile);
const outDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-curl-'));
let outSeq = 0;

interface CurlEnv {
  address: string;
  key: string;
  appId: number;
}
interface CurlResult {
  status: number;
  body: string;
}

/** Runs the document's command as written (bash expands the variables), only telling curl where to put the answer. */
async function runCurl(ex: Example, env: CurlEnv): Promise<CurlResult> {
  assert.match(ex.curl, /^curl /);
  const out = path.join(outDir, `out-${outSeq++}`);
  const cmd = ex.curl.replaceAll('<appId>', String(env.appId)).replace(/^curl /, `curl -sS --max-time 120 -o "$CURL_OUT" -w '%{http_code}' `);
  const { stdout } = await execFileP('bash', ['-c', cmd], {
    env: { ...process.env, BALENA_SUPERVISOR_ADDRESS: env.address, BALENA_SUPERVISOR_API_KEY: env.key, CURL_OUT: out },
  });
  const body = await fs.readFile(out, 'utf8').catch(() => '');
  return { status: Number(stdout.trim()), body };
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** Mismatches between a value and a shape (see the fixture's shapeLanguage). */
function shapeErrors(value: unknown, shape: Shape, at = '$'): string[] {
  if (typeof shape === 'string') {
    const t = typeOf(value);
    const ok = shape.split('|').some((s) => s === t || (s === 'numeric' && (t === 'number' || (t === 'string' && /^\d+$/.test(value as string)))));
    return ok ? [] : [`${at}: expected ${shape}, got ${t} ${JSON.stringify(value)}`];
  }
  if (typeOf(value) !== 'object') return [`${at}: expected an object, got ${typeOf(value)} ${JSON.stringify(value)}`];
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(shape);
  if (keys.length === 1 && keys[0] === '*') {
    const entries = Object.entries(obj);
    if (entries.length === 0) return [`${at}: expected at least one entry`];
    return entries.flatMap(([k, v]) => shapeErrors(v, shape['*']!, `${at}.${k}`));
  }
  return Object.entries(shape).flatMap(([key, sub]) => {
    const optional = key.endsWith('?');
    const name = optional ? key.slice(0, -1) : key;
    if (!(name in obj)) return optional ? [] : [`${at}.${name}: missing`];
    return shapeErrors(obj[name], sub, `${at}.${name}`);
  });
}

/** Checks an answer against the documented response; returns the parsed body for further checks. */
function assertDocumented(ex: Example, res: CurlResult): unknown {
  const r = ex.response;
  const what = `${ex.section}: got ${res.status} ${JSON.stringify(res.body)}`;
  assert.equal(res.status, r.status, what);
  switch (r.type) {
    case 'empty':
      // The document says "(Empty response)"; today's supervisor sends express's status text.
      assert.ok(res.body === '' || res.body === 'OK', what);
      return res.body;
    case 'text': {
      const text = res.body.trim();
      if (r.match) assert.match(text, new RegExp(r.match), what);
      else assert.equal(text, r.body, what);
      return text;
    }
    case 'json': {
      let json: unknown;
      assert.doesNotThrow(() => (json = JSON.parse(res.body)), what);
      if (r.shape) assert.deepEqual(shapeErrors(json, r.shape), [], what);
      else assert.deepEqual(json, r.body, what);
      return json;
    }
  }
}

function assertFailedJson(res: CurlResult, status: number, what: string): void {
  assert.equal(res.status, status, `${what}: got ${res.status} ${res.body}`);
  let json: { status?: unknown; message?: unknown } = {};
  assert.doesNotThrow(() => (json = JSON.parse(res.body) as typeof json), `${what}: body is not JSON: ${res.body}`);
  assert.equal(json.status, 'failed', what);
  assert.equal(typeof json.message, 'string', what);
  assert.ok((json.message as string).length > 0, what);
}

async function hostActions(dataDir: string): Promise<{ action: string; at: string }[]> {
  const text = await fs.readFile(path.join(dataDir, 'host', 'actions.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { action: string; at: string });
}

const isIsoDate = (s: unknown) => typeof s === 'string' && !Number.isNaN(Date.parse(s)) && /^\d{4}-\d\d-\d\dT/.test(s);

const singleApp = () => ({
  services: { main: service({ environment: { FOO: 'bar' }, volumes: ['data:/data'] }) },
  volumes: { data: {} },
});
const twoServiceApp = () => ({ services: { main: service(), side: service() } });

interface Device {
  ta: TestAgent;
  address: string;
  single: number;
  multi: number;
  env(appId: number): Promise<CurlEnv>;
}

async function device(t: TestContext, withMulti: boolean): Promise<Device> {
  const single = freshAppId();
  const multi = withMulti ? freshAppId() : 0;
  const ta = await startAgent(t, withMulti ? [single, multi] : [single]);
  const apps = withMulti ? { [single]: singleApp(), [multi]: twoServiceApp() } : { [single]: singleApp() };
  await ta.agent.setTarget(target(apps), 'test');
  await converge(ta.agent);
  const port = ta.agent.apiPort();
  assert.ok(port, 'the agent serves its API');
  const address = `http://127.0.0.1:${port}`;
  return { ta, address, single, multi, env: async (appId) => ({ address, appId, key: await ta.agent.apiKeys.keyForApp(appId) }) };
}

/** Examples that leave the device up and the key unchanged, in an order that keeps the app usable. */
const SHARED_RUN = [
  'ping',
  'healthy',
  'device',
  'apps-get',
  'v2-applications-state',
  'blink',
  'update',
  'host-config-patch',
  'host-config-get',
  'apps-stop',
  'apps-start',
  'restart',
  'purge',
];

const running = async (id: string) => (await docker.getContainer(id).inspect()).State.Running;

test('the fixture holds all 16 app-side curl examples of the reference document, and each is run below', () => {
  assert.equal(examples.length, 16);
  const covered = [...SHARED_RUN, 'regenerate-api-key', 'reboot', 'shutdown'];
  assert.deepEqual([...covered].sort(), examples.map((e) => e.id).sort());
});

test('documented examples against a 1-service app (and a 2-service app where multi-container is refused)', async (t) => {
  const dev = await device(t, true);
  const { ta, single, multi } = dev;
  const mainOf = async (appId: number) => (await containersOf(appId)).find((c) => c.service === 'main')!;

  const checks: Record<string, (body: unknown) => Promise<void>> = {
    device: async (body) => {
      assert.equal((body as { api_port: number }).api_port, ta.agent.apiPort());
    },
    'apps-get': async (body) => {
      const b = body as { appId: number; containerId: string; env: Record<string, string> };
      assert.equal(b.appId, single);
      const main = await mainOf(single);
      assert.ok(main.id.startsWith(b.containerId) && b.containerId.length >= 12, `containerId ${b.containerId} is not ${main.id}`);
      assert.equal(b.env.FOO, 'bar');
    },
    'v2-applications-state': async (body) => {
      const app = (body as Record<string, { appId: number; services: Record<string, unknown> }>)[`app${single}`];
      assert.ok(app, `keyed by app name: ${JSON.stringify(body)}`);
      assert.equal(app.appId, single);
      assert.ok(app.services.main);
    },
    blink: async () => {
      assert.ok((await hostActions(ta.dataDir)).some((a) => a.action === 'blink' && isIsoDate(a.at)));
    },
    'host-config-patch': async () => {
      assert.equal((await fs.readFile(path.join(ta.dataDir, 'host', 'etc', 'hostname'), 'utf8')).trim(), 'newhostname');
    },
    'host-config-get': async (body) => {
      const net = (body as { network: { hostname: string; proxy?: { ip: string; port: unknown; type: string } } }).network;
      assert.equal(net.hostname, 'newhostname');
      assert.equal(net.proxy?.ip, '192.168.0.199');
      assert.equal(Number(net.proxy?.port), 8123);
      assert.equal(net.proxy?.type, 'socks5');
    },
    'apps-stop': async (body) => {
      const main = await mainOf(single);
      assert.ok(main.id.startsWith((body as { containerId: string }).containerId));
      assert.equal(await running(main.id), false);
    },
    'apps-start': async (body) => {
      const main = await mainOf(single);
      assert.ok(main.id.startsWith((body as { containerId: string }).containerId));
      assert.equal(await running(main.id), true);
    },
    restart: async () => {
      await waitFor('main running after restart', async () => running((await mainOf(single)).id));
    },
    purge: async () => {
      await waitFor('main running after purge', async () => {
        const main = (await containersOf(single)).find((c) => c.service === 'main');
        return main && (await running(main.id));
      });
    },
  };

  for (const id of SHARED_RUN) {
    await t.test(id, async () => {
      const ex = example(id);
      if (id === 'host-config-get') {
        // The document's GET answer shows a proxy; set one first, as a user would have.
        const res = await fetch(`${dev.address}/v1/device/host-config?apikey=${await ta.agent.apiKeys.deviceKey()}`, {
          method: 'PATCH',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ network: { proxy: { type: 'socks5', ip: '192.168.0.199', port: 8123 } } }),
        });
        assert.equal(res.status, 200, await res.text());
      }
      const res = await runCurl(ex, await dev.env(single));
      const body = assertDocumented(ex, res);
      await checks[id]?.(body);
    });
  }

  for (const id of ['apps-stop', 'apps-start', 'apps-get']) {
    await t.test(`${id} on a multi-container app`, async () => {
      const ex = example(id);
      const before = await containersOf(multi);
      const res = await runCurl(ex, await dev.env(multi));
      assertFailedJson(res, ex.multiContainer!.status, `${ex.section} on a 2-service app`);
      await sleep(300);
      assert.deepEqual(
        (await containersOf(multi)).map((c) => [c.id, c.state]),
        before.map((c) => [c.id, 'running']),
      );
    });
  }
});

test('POST /v1/regenerate-api-key: answers the new key, which works at once; the old one no longer does', async (t) => {
  const dev = await device(t, false);
  const env = await dev.env(dev.single);
  const ex = example('regenerate-api-key');
  const key = assertDocumented(ex, await runCurl(ex, env)) as string;
  assert.notEqual(key, env.key);
  const deviceEx = example('device');
  assert.equal((await runCurl(deviceEx, { ...env, key })).status, 200);
  assert.equal((await runCurl(deviceEx, env)).status, 401);
});

for (const action of ['reboot', 'shutdown'] as const) {
  test(`POST /v1/${action} (sandbox host): 202 as documented, the action is recorded and the apps are stopped first`, async (t) => {
    const dev = await device(t, false);
    const [main] = await containersOf(dev.single);
    const ex = example(action);
    assertDocumented(ex, await runCurl(ex, await dev.env(dev.single)));
    const recorded = await waitFor(`${action} in actions.jsonl`, async () => (await hostActions(dev.ta.dataDir)).find((a) => a.action === action), 10_000);
    assert.ok(isIsoDate(recorded.at), JSON.stringify(recorded));
    await waitFor('the app stopped', async () => !(await running(main!.id)), 15_000);
  });
}

after(() => fs.rm(outDir, { recursive: true, force: true }));
