// When a container started, read from the engine's State.StartedAt: a handover's timeout counts
// from it, so it must never come out earlier than the engine's time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startedAtMs } from '../../src/agent/engine/readState.js';

test('StartedAt keeps its full precision, rounded up to the millisecond', () => {
  const second = Date.UTC(2026, 2, 1, 12, 0, 7);
  assert.equal(startedAtMs('2026-03-01T12:00:07Z'), second);
  assert.equal(startedAtMs('2026-03-01T12:00:07.25Z'), second + 250);
  assert.equal(startedAtMs('2026-03-01T12:00:07.123000000Z'), second + 123);
  assert.equal(startedAtMs('2026-03-01T12:00:07.123000001Z'), second + 124);
  assert.equal(startedAtMs('2026-03-01T12:00:07.999999999Z'), second + 1000);
  assert.equal(startedAtMs('2026-03-01T14:00:07.5+02:00'), second + 500);
});

test('a container that never ran, or an unreadable time, has no start', () => {
  assert.equal(startedAtMs('0001-01-01T00:00:00Z'), undefined);
  assert.equal(startedAtMs(''), undefined);
  assert.equal(startedAtMs(undefined), undefined);
  assert.equal(startedAtMs('yesterday'), undefined);
});
