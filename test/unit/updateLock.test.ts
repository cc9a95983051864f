// Update locks on a real file system: the agent's own lock files vs the app's, and what a hostile
// container can plant in its lock folder (links, FIFOs, device nodes, folders, huge files).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { UpdatesLockedError } from '../../src/shared/errors.js';
import { UpdateLocks } from '../../src/agent/locks/updateLock.js';

const MARKER = 'bosun-agent-lock\n';

describe('UpdateLocks', () => {
  let root: string;
  let locks: UpdateLocks;
  const lockFile = (service: string, file = 'updates.lock') => path.join(root, '7', service, file);
  const files = async (service: string) => (await fs.readdir(path.join(root, '7', service))).sort();

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-locks-'));
    locks = new UpdateLocks(root);
  });
  afterEach(() => fs.rm(root, { recursive: true, force: true }));

  test('takes both lock files in every service folder (mode 1777) and releases only its own', async () => {
    await locks.take(7, ['a', 'b']);
    assert.deepEqual(await files('a'), ['resin-updates.lock', 'updates.lock']);
    assert.equal((await fs.stat(path.join(root, '7', 'a'))).mode & 0o7777, 0o1777);
    assert.equal(await fs.readFile(lockFile('a'), 'utf8'), MARKER);
    assert.ok(locks.heldByAgent().has(7));
    assert.deepEqual(await locks.heldByApp(7), []);
    assert.deepEqual((await fs.readdir(path.join(root, '7'))).sort(), ['a', 'b'], 'no temp file is left in the app folder');
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
    assert.equal(await fs.readFile(lockFile('a', 'resin-updates.lock'), 'utf8'), MARKER);
  });

  test("after a restart, the previous run's locks and temp files are cleaned up; the app's stay", async () => {
    await locks.take(7, ['a']);
    await locks.ensureDir(7, 'b');
    await fs.writeFile(lockFile('b'), 'mine');
    await fs.writeFile(path.join(root, '7', '.bosun-lock-0123456789abcdef01234567'), MARKER);
    const restarted = new UpdateLocks(root);
    assert.equal(await restarted.removeStaleAgentLocks(), 2);
    assert.deepEqual(await files('a'), []);
    assert.deepEqual(await files('b'), ['updates.lock']);
    assert.deepEqual((await fs.readdir(path.join(root, '7'))).sort(), ['a', 'b']);
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

const asRoot = process.getuid?.() === 0 ? false : 'planting a device node needs root';

describe('UpdateLocks in a folder a root container planted things in', { timeout: 60_000 }, () => {
  let root: string;
  let outside: string;
  let locks: UpdateLocks;
  const dir = () => path.join(root, '7', 'a');
  const lockFile = (file = 'updates.lock') => path.join(dir(), file);

  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-locks-'));
    outside = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-outside-'));
    // a file the container must not reach; it even holds the agent's marker, so that following a
    // link to it would make the agent take it for its own lock
    await fs.writeFile(path.join(outside, 'victim'), MARKER);
    locks = new UpdateLocks(root);
    await locks.ensureDir(7, 'a');
  });
  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
    await fs.rm(outside, { recursive: true, force: true });
  });
  const victimUnchanged = async () => {
    assert.equal(await fs.readFile(path.join(outside, 'victim'), 'utf8'), MARKER, 'the file outside the folder is unchanged');
    assert.deepEqual(await fs.readdir(outside), ['victim']);
  };

  test('links at the temp names of the old agent (pid-based) are neither written through nor removed', async () => {
    for (const name of ['updates.lock', 'resin-updates.lock']) {
      await fs.symlink(path.join(outside, 'victim'), lockFile(`.bosun-lock-${process.pid}-${name}`));
    }
    await locks.take(7, ['a']);
    await locks.release(7);
    await new UpdateLocks(root).removeStaleAgentLocks();
    await victimUnchanged();
    assert.deepEqual((await fs.readdir(dir())).sort(), [`.bosun-lock-${process.pid}-resin-updates.lock`, `.bosun-lock-${process.pid}-updates.lock`]);
  });

  const plants: [string, (p: string) => Promise<void>, (string | false)?][] = [
    ['a symlink to a file outside holding the marker', (p) => fs.symlink(path.join(outside, 'victim'), p)],
    ['a symlink to /dev/zero', (p) => fs.symlink('/dev/zero', p)],
    ['a dangling symlink', (p) => fs.symlink(path.join(outside, 'nothing'), p)],
    ['a FIFO', async (p) => void execFileSync('mkfifo', [p])],
    ["a character device node (/dev/null's numbers)", async (p) => void execFileSync('mknod', [p, 'c', '1', '3']), asRoot],
    ['an empty folder', (p) => fs.mkdir(p)],
    [
      'a folder with files',
      async (p) => {
        await fs.mkdir(p);
        await fs.writeFile(path.join(p, 'x'), 'app data');
      },
    ],
    [
      'a 64 GiB sparse file',
      async (p) => {
        await fs.writeFile(p, '');
        await fs.truncate(p, 64 * 2 ** 30);
      },
    ],
    ['the marker followed by more', (p) => fs.writeFile(p, `${MARKER}x`)],
  ];

  for (const [what, plant, skip = false] of plants) {
    test(`${what} at updates.lock is the app holding the lock: never followed, opened or removed`, { skip }, async () => {
      await plant(lockFile());
      const before = await fs.lstat(lockFile());
      await assert.rejects(locks.take(7, ['a']), (e: unknown) => e instanceof UpdatesLockedError && e.lockPath === lockFile());
      assert.deepEqual(await locks.heldByApp(7), [lockFile()]);
      await locks.release(7);
      assert.equal(await new UpdateLocks(root).removeStaleAgentLocks(), 0);
      const after = await fs.lstat(lockFile());
      assert.deepEqual([after.ino, after.mode, after.size], [before.ino, before.mode, before.size], 'left as the app made it');
      assert.deepEqual(await fs.readdir(dir()), ['updates.lock'], 'nothing of the agent is left');
      await victimUnchanged();
    });

    test(`${what} at updates.lock gives way to force, without following it`, { skip }, async () => {
      await plant(lockFile());
      await locks.take(7, ['a'], true);
      assert.equal(await fs.readFile(lockFile(), 'utf8'), MARKER);
      await locks.release(7);
      const left = await fs.readdir(dir());
      assert.ok(
        left.every((f) => /^\.updates\.lock\.discarded-[0-9a-f]+$/.test(f)),
        `only a folder moved aside may stay: ${left.join(', ')}`,
      );
      await victimUnchanged();
    });
  }

  test('handover markers of any kind are seen without opening them; a folder is moved aside when cleared', async () => {
    execFileSync('mkfifo', [lockFile('handover-complete')]);
    assert.equal(await locks.handoverComplete(7, 'a'), true);
    await locks.clearHandover(7, 'a');
    assert.equal(await locks.handoverComplete(7, 'a'), false);
    await fs.mkdir(lockFile('resin-kill-me'));
    await fs.symlink(path.join(outside, 'victim'), path.join(lockFile('resin-kill-me'), 'inside'));
    assert.equal(await locks.handoverComplete(7, 'a'), true);
    await locks.clearHandover(7, 'a');
    assert.equal(await locks.handoverComplete(7, 'a'), false);
    await victimUnchanged();
  });
});
