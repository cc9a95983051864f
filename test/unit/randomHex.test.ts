import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomHex } from '../../src/agent/randomHex.js';
import { digestsEqual, sha256, sha256Hex } from '../../src/shared/sha256.js';
import { createHash } from 'node:crypto';

test('random keys: the asked length in hex, never the same twice', async () => {
  const keys = await Promise.all(Array.from({ length: 50 }, () => randomHex(32)));
  assert.ok(keys.every((k) => /^[0-9a-f]{64}$/.test(k)));
  assert.equal(new Set(keys).size, keys.length);
  assert.match(await randomHex(16), /^[0-9a-f]{32}$/);
});

test('sha256 gives node:crypto digests (stored config hashes stay valid); digests compare by content', () => {
  for (const text of ['', 'x', '{"image":"a"}', 'é'.repeat(1000)]) {
    assert.equal(sha256Hex(text), createHash('sha256').update(text).digest('hex'));
  }
  assert.ok(digestsEqual(sha256('key'), sha256('key')));
  assert.ok(!digestsEqual(sha256('key'), sha256('kez')));
  assert.ok(!digestsEqual(sha256('key'), sha256('key').subarray(1)));
});
