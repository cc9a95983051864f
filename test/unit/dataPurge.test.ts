// purge_data: the allow-list of data areas (server and agent) and the emptying of a folder that
// containers wrote (no link followed, nothing opened, nothing outside touched).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { dataRoots, DEFAULT_DATA_ROOTS, purgeRefusal } from '../../src/shared/dataPurge.js';
import { validateTargetState } from '../../src/shared/validateTarget.js';
import { ValidationError } from '../../src/shared/errors.js';
import { emptyFolder, MAX_DEPTH } from '../../src/agent/untrustedFs.js';

describe('purge_data allow-list', () => {
  test('only folders strictly inside a data root are purged', () => {
    for (const ok of ['/data/app', '/data/app/cache/', '/mnt/data/x', '/var/lib/bosun/data/app', '//data//app']) {
      assert.equal(purgeRefusal(ok), undefined, ok);
    }
    for (const refused of [
      '/var/lib',
      '/var/lib/app',
      '/var/log/app',
      '/mnt/boot',
      '/mnt/boot/config',
      '/root/app',
      '/root/.ssh',
      '/home/user/data',
      '/etc',
      '/data',
      '/data/',
      '/mnt/data',
      '/data/../etc/app',
      '/data/app/../..',
      '/data2/app',
      '/var/lib/bosun/agent',
      'data/app',
      '/',
    ]) {
      assert.match(
        purgeRefusal(refused) ?? '',
        /only folders inside a data area are purged \(\/data\/…, \/mnt\/data\/…, \/var\/lib\/bosun\/data\/…\)/,
        refused,
      );
    }
  });

  test('BOSUN_DATA_ROOTS replaces the defaults; relative roots and / are ignored', () => {
    assert.deepEqual(dataRoots(undefined), DEFAULT_DATA_ROOTS);
    assert.deepEqual(dataRoots('/srv/apps/:relative:/:/opt/data'), ['/srv/apps', '/opt/data']);
    assert.equal(purgeRefusal('/srv/apps/x', dataRoots('/srv/apps')), undefined);
    assert.ok(purgeRefusal('/data/x', dataRoots('/srv/apps')));
    assert.match(purgeRefusal('/x/y', dataRoots('/:rel')) ?? '', /none: BOSUN_DATA_ROOTS/);
  });

  test('a target that purges a bind outside the data areas is refused; volumes and read-only binds are fine', () => {
    const withVolumes = (volumes: string[]) => ({
      apps: { '1': { name: 'a', release: { id: 1, commit: 'c', volumes: { data: {} }, services: { main: { image: 'x', purge_data: true, volumes } } } } },
    });
    assert.ok(validateTargetState(withVolumes(['data:/d', '/data/app:/app', '/var/lib:/host:ro'])));
    assert.throws(
      () => validateTargetState(withVolumes(['/var/lib/app:/app'])),
      (e: unknown) => e instanceof ValidationError && e.field === '/apps/1/release/services/main/purge_data' && /\/var\/lib\/app/.test(e.reason),
    );
  });
});

describe('emptyFolder on a folder containers wrote', { timeout: 60_000 }, () => {
  let base: string;
  let folder: string;
  let outside: string;
  beforeEach(async () => {
    base = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-purge-'));
    folder = path.join(base, 'data');
    outside = path.join(base, 'outside');
    await fs.mkdir(path.join(outside, 'dir'), { recursive: true });
    await fs.writeFile(path.join(outside, 'file'), 'keep');
    await fs.writeFile(path.join(outside, 'dir', 'inner'), 'keep');
    await fs.mkdir(folder);
  });
  afterEach(() => fs.rm(base, { recursive: true, force: true }));
  const outsideIntact = async () => {
    assert.equal(await fs.readFile(path.join(outside, 'file'), 'utf8'), 'keep');
    assert.equal(await fs.readFile(path.join(outside, 'dir', 'inner'), 'utf8'), 'keep');
  };

  const asRoot = process.getuid?.() === 0 ? false : 'planting a device node needs root';
  test('removes links (never their targets), FIFOs, device nodes, sparse files and nested folders; keeps the folder', { skip: asRoot }, async () => {
    await fs.mkdir(path.join(folder, 'a', 'b', 'c'), { recursive: true });
    await fs.writeFile(path.join(folder, 'a', 'b', 'c', 'f'), 'x');
    await fs.symlink(path.join(outside, 'file'), path.join(folder, 'link-to-file'));
    await fs.symlink(path.join(outside, 'dir'), path.join(folder, 'link-to-dir'));
    await fs.symlink(path.join(outside, 'dir'), path.join(folder, 'a', 'b', 'deep-link-to-dir'));
    await fs.symlink('/', path.join(folder, 'a', 'root'));
    execFileSync('mkfifo', [path.join(folder, 'fifo'), path.join(folder, 'a', 'fifo')]);
    execFileSync('mknod', [path.join(folder, 'a', 'dev'), 'c', '1', '3']);
    await fs.writeFile(path.join(folder, 'sparse'), '');
    await fs.truncate(path.join(folder, 'sparse'), 2 ** 40);
    await fs.link(path.join(outside, 'file'), path.join(folder, 'hardlink'));
    await emptyFolder(folder);
    assert.deepEqual(await fs.readdir(folder), []);
    await outsideIntact();
  });

  test('a folder that is a link is followed once, and `refuse` sees where it leads', async () => {
    await fs.rm(folder, { recursive: true });
    await fs.symlink(outside, folder);
    const seen: string[] = [];
    await assert.rejects(
      emptyFolder(folder, (real) => (seen.push(real), `refused ${real}`)),
      new RegExp(`refused ${outside}`),
    );
    assert.deepEqual(seen, [await fs.realpath(outside)]);
    await outsideIntact();
  });

  test('a missing folder has nothing to empty; a file where the folder should be is an error', async () => {
    await emptyFolder(path.join(base, 'missing'));
    await assert.rejects(emptyFolder(path.join(outside, 'file')), /ENOTDIR/);
    await outsideIntact();
  });

  test(`a tree deeper than ${MAX_DEPTH} levels is refused, not walked without bound`, async () => {
    await fs.mkdir(path.join(folder, ...Array.from({ length: MAX_DEPTH + 2 }, () => 'd')), { recursive: true });
    await assert.rejects(emptyFolder(folder), /nested deeper than 128 levels/);
  });
});
