// The device's operator calls the device API from the host with the device key, which
// `bosun-agent device-key` prints (the shipped launcher, as on a device): read from the agent database,
// so only the agent's user (root here) gets it; a database others can read is refused.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ENGINE_SCOPE, freePort, target, waitFor } from './harness.js';

const LAUNCHER = 'dist/bosun-agent';

const deviceKey = (dataDir: string, uid?: number) => {
  const r = spawnSync(LAUNCHER, ['device-key', '--data-dir', dataDir], { encoding: 'utf8', ...(uid !== undefined ? { uid, gid: uid } : {}) });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
};

test('bosun-agent device-key prints the device key, which the device API takes for device-only routes; others cannot read it', async (t) => {
  await fs.access(LAUNCHER).catch(() => assert.fail(`${LAUNCHER} is missing: scripts/test.sh bundles the agent (node scripts/bundle-agent.mjs)`));
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-device-key-'));
  t.after(() => fs.rm(dataDir, { recursive: true, force: true }));
  const missing = deviceKey(dataDir);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /no agent database at .*agent\.sqlite: give the agent's --data-dir/);

  const targetFile = path.join(dataDir, 'target.json');
  await fs.writeFile(targetFile, JSON.stringify(target({})));
  const port = await freePort();
  const agent = spawn(LAUNCHER, ['--engine-scope', ENGINE_SCOPE, '--data-dir', dataDir, '--target', targetFile, '--api-port', String(port)], {
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => agent.once('exit', resolve));
  t.after(async () => {
    agent.kill('SIGKILL');
    await exited;
  });
  const api = `http://127.0.0.1:${port}`;
  await waitFor('the device API', async () => (await fetch(`${api}/v1/healthy`).catch(() => undefined))?.ok, 60_000);

  const printed = deviceKey(dataDir);
  assert.equal(printed.status, 0, printed.stderr);
  assert.match(printed.stdout, /^[0-9a-f]{64}$/);
  const get = (route: string, key: string) => fetch(`${api}${route}`, { headers: { authorization: `Bearer ${key}` } });
  // a device-key-only route (an app's key gets 401 there)
  assert.equal((await get('/v2/local/target-state', printed.stdout)).status, 200);
  assert.equal((await get('/v1/device', printed.stdout)).status, 200);
  assert.equal((await get('/v1/device', 'f'.repeat(64))).status, 401);

  // regenerated through the API: the command prints the new key, the old one no longer works
  const regen = await fetch(`${api}/v1/regenerate-api-key`, { method: 'POST', headers: { authorization: `Bearer ${printed.stdout}` } });
  assert.equal(regen.status, 200);
  const fresh = (await regen.text()).trim();
  assert.equal(deviceKey(dataDir).stdout, fresh);
  assert.equal((await get('/v1/device', printed.stdout)).status, 401);
  assert.equal((await get('/v1/device', fresh)).status, 200);

  // another user gets no key
  const other = deviceKey(dataDir, 65534);
  assert.equal(other.status, 1);
  assert.equal(other.stdout, '');
  assert.match(other.stderr, /cannot read .*agent\.sqlite: run this as the agent's user/);
  // a database readable by others is refused, not trusted
  await fs.chmod(path.join(dataDir, 'agent.sqlite'), 0o644);
  const wide = deviceKey(dataDir);
  assert.equal(wide.status, 1);
  assert.equal(wide.stdout, '');
  assert.match(wide.stderr, /readable by other users \(mode 644\): run chmod 600/);
});
