import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isoTime } from '../../src/shared/isoTime.js';

test('isoTime is toISOString, to the millisecond, across dates and padding', () => {
  for (const ms of [0, 1, 999, 86_399_999, Date.UTC(2000, 1, 29, 23, 59, 59, 7), Date.UTC(9999, 11, 31, 23, 59, 59, 999), Date.UTC(5, 0, 1), 1796141007274]) {
    assert.equal(isoTime(ms), new Date(ms).toISOString(), String(ms));
  }
  assert.match(isoTime(), /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
});
