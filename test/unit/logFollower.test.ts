// Engine timestamps as the log follower passes them on: fixed nine fraction digits, so that the
// shipper's cursors compare as strings exactly as they do as times.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engineTime } from '../../src/agent/logs/logFollower.js';

test('engine times get nine fraction digits; times that are not RFC 3339 are none', () => {
  assert.equal(engineTime('2024-05-01T10:00:00.123456789Z'), '2024-05-01T10:00:00.123456789Z');
  // some engines trim trailing zeros: .1234 is later than .12345 as a string, not as a time
  assert.equal(engineTime('2024-05-01T10:00:00.1234Z'), '2024-05-01T10:00:00.123400000Z');
  assert.ok(engineTime('2024-05-01T10:00:00.1234Z')! < engineTime('2024-05-01T10:00:00.12345Z')!);
  assert.equal(engineTime('2024-05-01T10:00:00Z'), '2024-05-01T10:00:00.000000000Z');
  assert.equal(engineTime('2024-05-01T12:00:00.5+02:00'), '2024-05-01T10:00:00.500000000Z');
  assert.equal(engineTime('hello'), undefined);
  assert.equal(engineTime(''), undefined);
});
