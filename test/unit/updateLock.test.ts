// Update locks on a real file system: the agent's own lock files vs the app's.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { beforeEach, describe, test } from 'node:test';
import { UpdatesLockedError } from '../../src/shared/errors.js';
import { UpdateLocks } from '../../src/agent/locks/updateLock.js';

describe('UpdateLocks', () => {
  let root: string;
  let locks: UpdateLocks;
  const lockFile = (service: string, file = 'updates.lock') => path.join(root, '7', service, file);
  const files = async (service: string) => (await fs.readdir(path.join(root, '7', service))).sort();

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-locks-'));
    locks = new UpdateLocks(root);
  });

  test('takes both lock files in every service folder (mode 1777) and releases only its own', async () => {
    await locks.take(7, ['a', 'b']);
    assert.deepEqual(await files('a'), ['resin-updates.lock', 'updates.lock']);
    assert.equal((await fs.stat(path.join(root, '7', 'a'))).mode & 0o7777, 0o1777);
    assert.ok(locks.heldByAgent().has(7));
    assert.deepEqual(await locks.heldByApp(7), []);
    await locks.release(7);
    assert.deepEqual(await files('a'), []);
    assert.ok(!locks.heldByAgent().has(7));
  });

  test('a lock file the app wrote (even empty) holds the update and is never removed by the agent', async () => {
    await locks.ensureDir(7, 'b');
    await fs.writeFile(lockFile('b'), '');
    await assert.rejects(locks.take(7, ['a', 'b']), (e: unknown) => e instanceof UpdatesLockedError && e.lockPath === lockFile('b'));
    assert.deepEqual(await files('a'), [], 'nothing half-taken is left behind');
    assert.deepEqual(await locks.heldByApp(7), [lockFile('b')]);
    await locks.release(7);
    assert.deepEqual(await files('b'), ['updates.lock']);
    assert.equal(await locks.removeStaleAgentLocks(), 0);
    assert.deepEqual(await files('b'), ['updates.lock']);
  });

  test('force replaces the app lock with the agent one', async () => {
    await locks.ensureDir(7, 'a');
    await fs.writeFile(lockFile('a', 'resin-updates.lock'), 'app');
    await locks.take(7, ['a'], true);
    assert.equal(await fs.readFile(lockFile('a', 'resin-updates.lock'), 'utf8'), 'bosun-agent-lock\n');
  });

  test('after a restart, the previous run\'s locks and temp files are cleaned up; the app\'s stay', async () => {
    await locks.take(7, ['a']);
    await locks.ensureDir(7, 'b');
    await fs.writeFile(lockFile('b'), 'mine');
    await fs.writeFile(path.join(root, '7', 'a', '.bosun-lock-123-updates.lock'), 'bosun-agent-lock\n');
    const restarted = new UpdateLocks(root);
    assert.equal(await restarted.removeStaleAgentLocks(), 2);
    assert.deepEqual(await files('a'), []);
    assert.deepEqual(await files('b'), ['updates.lock']);
  });

  test('handover markers: seen when the new container writes one, cleared before the next handover', async () => {
    await locks.ensureDir(7, 'a');
    assert.equal(await locks.handoverComplete(7, 'a'), false);
    await fs.writeFile(lockFile('a', 'resin-kill-me'), '');
    assert.equal(await locks.handoverComplete(7, 'a'), true);
    await locks.clearHandover(7, 'a');
    assert.equal(await locks.handoverComplete(7, 'a'), false);
  });
});
