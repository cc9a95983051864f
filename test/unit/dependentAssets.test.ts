// The assets cache of a gateway (src/agent/dependent/assets.ts): a prune that runs while an
// extraction is under way leaves its temp file (the interleaving injected through the cache's
// `beforeRename` seam, no timing), and still removes the temp files a crash left. The engine side
// (a container created, never started, its /assets read) is test/integration/dependentDevices.test.ts;
// here a stand-in container hands over the archive.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import type Docker from 'dockerode';
import { AssetCache } from '../../src/agent/dependent/assets.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true }))));

const TAR = Buffer.from('the /assets of release c1, as the engine archives them');

/** An engine whose containers hand over TAR as their /assets archive. */
const engine = {
  createContainer: async () => ({
    getArchive: async () => Readable.from([TAR]),
    remove: async () => undefined,
  }),
} as unknown as Docker;

test('a prune during an extraction leaves its temp file; a temp file a crash left goes', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-assets-'));
  dirs.push(dir);
  await fs.writeFile(path.join(dir, '.0123456789abcdef.tmp'), 'left by a crash');
  const seen: string[][] = [];
  const cache: AssetCache = new AssetCache({
    docker: engine,
    dir,
    scope: undefined,
    // the extraction's temp file is whole and not yet renamed: a prune of every commit runs now
    beforeRename: async (tmp) => {
      seen.push(await fs.readdir(dir));
      await cache.prune(() => false);
      seen.push(await fs.readdir(dir));
      assert.ok(seen[1]!.includes(path.basename(tmp)), 'the temp file of the extraction under way is left');
    },
  });
  const file = await cache.tar(1, 'c1', 'reg/edge:1');
  assert.equal(seen.length, 2, 'the prune ran inside the extraction');
  assert.ok(seen[0]!.includes('.0123456789abcdef.tmp'));
  assert.ok(!seen[1]!.includes('.0123456789abcdef.tmp'), "a crash's temp file goes");
  assert.deepEqual(await fs.readFile(file), TAR, 'the tar is whole, under its name');
  assert.deepEqual(await fs.readdir(dir), ['1_c1.tar']);
});
