import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BatchedLoader } from '../../src/server/targets/batchedLoader.js';

test('lookups of one event-loop turn become one query per max keys; repeated keys share it', async () => {
  const queries: string[][] = [];
  const loader = new BatchedLoader(async (keys: string[]) => {
    queries.push(keys);
    return new Map(keys.filter((k) => k !== 'gone').map((k) => [k, k.toUpperCase()]));
  }, 2);
  const answers = await Promise.all(['a', 'b', 'a', 'c', 'gone'].map((k) => loader.load(k)));
  assert.deepEqual(answers, ['A', 'B', 'A', 'C', undefined]);
  assert.deepEqual(queries, [
    ['a', 'b'],
    ['c', 'gone'],
  ]);
  assert.equal(await loader.load('d'), 'D', 'a later turn is a new batch');
  assert.equal(queries.length, 3);
});

test('a failed query fails the lookups of its batch only', async () => {
  const loader = new BatchedLoader(async (keys: string[]) => {
    if (keys.includes('bad')) throw new Error('database down');
    return new Map(keys.map((k) => [k, k]));
  }, 1);
  const [bad, good] = await Promise.allSettled([loader.load('bad'), loader.load('good')]);
  assert.equal(bad.status, 'rejected');
  assert.deepEqual(good, { status: 'fulfilled', value: 'good' });
});
