// config.json holds the device's keys: owner-only on disk, whether the agent wrote it or found it.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readConfigJson, writeConfigJson } from '../../src/agent/config/configJson.js';

test('config.json is 0600 when written, narrowed when found wider, and a leftover temp file cannot widen it', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-config-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'config.json');
  const mode = async () => (await fs.stat(file)).mode & 0o777;
  const umask = process.umask(0o022);
  t.after(() => process.umask(umask));

  await writeConfigJson(file, { uuid: 'abcdef1', deviceApiKey: 'secret' });
  assert.equal(await mode(), 0o600);

  // provisioned by hand (or by an older agent) with the umask's mode
  await fs.chmod(file, 0o644);
  assert.deepEqual(await readConfigJson(file), { uuid: 'abcdef1', deviceApiKey: 'secret' });
  assert.equal(await mode(), 0o600);

  // a temp file a crash left behind with a wide mode is not what the new config.json inherits
  await fs.writeFile(path.join(dir, `.config.json.${process.pid}.tmp`), 'stale', { mode: 0o666 });
  await fs.chmod(path.join(dir, `.config.json.${process.pid}.tmp`), 0o666);
  await writeConfigJson(file, { uuid: 'abcdef1', deviceApiKey: 'other' });
  assert.equal(await mode(), 0o600);
});
