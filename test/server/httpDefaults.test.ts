// How the server meets HTTP clients: `Content-Type: application/json` with no body is no body, on
// every method (many clients send the header always); and the server listens on loopback unless
// told otherwise (`--host`, BOSUN_SERVER_HOST), so the admin API is not on the network at first start.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { backends } from './backends.js';
import { listen, user } from './helpers.js';
import { startServerProcess } from './serverProcess.js';

/** A raw request, exactly as given: no body, and the headers named (fetch would drop or add some). */
function raw(url: string, method: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

for (const backend of backends()) {
  describe(`JSON bodies on ${backend.name}`, () => {
    test('Content-Type: application/json with an empty body is accepted on DELETE, POST and GET; a route that needs a body still names it', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const call = user(server);
      const auth = { authorization: `APIToken ${server.firstAdminToken}`, 'content-type': 'application/json' };
      const ids: number[] = [];
      for (let i = 0; i < 3; i++) ids.push(Number((await call('POST', '/docker/registries/', { url: 'r.example.com', username: 'u', password: 'p' })).body.id));

      assert.equal((await raw(`${base}/docker/registries/${ids[0]}/`, 'DELETE', { ...auth, 'content-length': '0' })).status, 204, 'Content-Length: 0');
      assert.equal((await raw(`${base}/docker/registries/${ids[1]}/`, 'DELETE', { ...auth, 'transfer-encoding': 'chunked' })).status, 204, 'chunked, no chunk');
      const injected = await server.app.inject({
        method: 'DELETE',
        url: `/docker/registries/${ids[2]}/`,
        headers: { ...auth, 'content-type': 'application/json; charset=utf-8' },
        payload: '',
      });
      assert.equal(injected.statusCode, 204);
      assert.equal((await raw(`${base}/docker/registries/`, 'GET', { ...auth, 'content-length': '0' })).status, 200);
      assert.equal((await raw(`${base}/auth/callback-key/rotate/`, 'POST', { ...auth, 'content-length': '0' })).status, 200, 'a POST that takes no body');

      const needsBody = await raw(`${base}/docker/projects/`, 'POST', { ...auth, 'content-length': '0' });
      assert.equal(needsBody.status, 400);
      assert.match(JSON.parse(needsBody.body).detail, /body/);
      const bad = await raw(`${base}/docker/projects/`, 'POST', auth, '{"name":');
      assert.equal(bad.status, 400, 'malformed JSON is still refused');
      const poisoned = await raw(`${base}/docker/projects/`, 'POST', auth, '{"name":"x","__proto__":{"admin":true}}');
      assert.equal(poisoned.status, 400, 'so is a prototype-poisoning body');
      assert.deepEqual((await call('GET', '/docker/projects/')).body, []);
    });
  });
}

/** An IPv4 address of this machine that is not loopback, if it has one. */
const outside = Object.values(os.networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

async function tempDir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-host-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

const reachable = (url: string) =>
  fetch(`${url}/openapi.json`).then(
    (r) => r.status === 200,
    () => false,
  );

describe('listen address', () => {
  test('by default the server listens on 127.0.0.1 only', async (t) => {
    const server = await startServerProcess(t, ['--data-dir', await tempDir(t), '--port', '0']);
    const url = new URL(server.url);
    assert.equal(url.hostname, '127.0.0.1');
    assert.ok(await reachable(server.url));
    if (outside) assert.equal(await reachable(`http://${outside}:${url.port}`), false, `not on ${outside}`);
  });

  test('--host 0.0.0.0 (or BOSUN_SERVER_HOST) exposes it on the network', { skip: outside ? false : 'no network interface but loopback' }, async (t) => {
    const byOption = await startServerProcess(t, ['--data-dir', await tempDir(t), '--port', '0', '--host', '0.0.0.0']);
    assert.ok(await reachable(`http://${outside}:${new URL(byOption.url).port}`));
    const byEnv = await startServerProcess(t, ['--data-dir', await tempDir(t), '--port', '0'], { BOSUN_SERVER_HOST: outside! });
    assert.equal(new URL(byEnv.url).hostname, outside);
  });
});

describe('malformed JSON', () => {
  test('a 400 for a JSON body that does not parse says where: line, column and position, and why', async (t) => {
    const server = await backends()[0]!.start(t);
    const base = await listen(server);
    const auth = { authorization: `APIToken ${server.firstAdminToken}`, 'content-type': 'application/json' };
    // the README's release curl as it once was: a line break inside a JSON string
    const body =
      '{"version":"1.0.0","containers":[{"name":"web",\n  "image":"bosun-test/app","tag":"v1",' +
      '"startup_parameters":{"command":["sh","-c","echo hello >\n  /tmp/index.html"]}}]}';
    const res = await raw(`${base}/docker/projects/1/releases/`, 'POST', auth, body);
    assert.equal(res.status, 400);
    assert.equal(
      JSON.parse(res.body).detail,
      'invalid JSON body at line 2, column 95 (position 142): a line break inside a string (write \\n, or end the string before the break)',
    );
    for (const [text, where] of [
      ['{"name":', 'line 1, column 9 (position 8): expected a value: the text ends too soon'],
      ['[1,]', 'line 1, column 4 (position 3): a trailing comma before "]"'],
      ['{name: "x"}', 'line 1, column 2 (position 1): expected a property name in double quotes: unexpected "n"'],
      ['{"a": 1}\n{"b": 2}', 'line 2, column 1 (position 9): unexpected text after the JSON value: "{"'],
    ]) {
      const r = await raw(`${base}/docker/projects/`, 'POST', auth, text);
      assert.equal(r.status, 400, text);
      assert.equal(JSON.parse(r.body).detail, `invalid JSON body at ${where}`, text);
    }
  });
});
