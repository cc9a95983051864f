// Engine timestamps as the log follower passes them on: fixed nine fraction digits, so that the
// shipper's cursors compare as strings exactly as they do as times; where a resumed log starts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engineTime, resumeAt } from '../../src/agent/logs/logFollower.js';

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

test('a resumed log starts at the earlier stream cursor, but no more than 5 s before the later one', () => {
  const at = (s: string) => `2024-05-01T10:00:${s}Z`;
  assert.equal(resumeAt({ stdout: at('03.000000001'), stderr: at('02.500000000') }), at('02.500000000'));
  assert.equal(resumeAt({ stdout: at('01.000000000'), stderr: at('09.123456789') }), at('04.123456789'));
  // across a minute, nanoseconds kept
  assert.equal(resumeAt({ stdout: '2024-05-01T10:01:02.000000007Z', stderr: '2024-04-01T00:00:00.000000000Z' }), at('57.000000007'));
  assert.equal(resumeAt({ stderr: at('07.000000000') }), at('07.000000000'));
  assert.equal(resumeAt({}), undefined);
});
