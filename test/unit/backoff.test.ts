import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff } from '../../src/agent/reconciler/backoff.js';

describe('Backoff', () => {
  test('each failure doubles the wait, up to the bound; retryAt says when to try again', () => {
    const b = new Backoff<string>(1000, 5000);
    assert.deepEqual(
      [1, 2, 3, 4, 5].map(() => b.failed('x', 0)),
      [1000, 2000, 4000, 5000, 5000],
    );
    assert.equal(b.retryAt('x'), 5000);
    assert.equal(b.retryAt('y'), undefined);
    b.delete('x');
    assert.equal(b.failed('x', 100), 1000, 'a success (delete) starts over');
  });

  test('prune drops only entries that expired before the given time', () => {
    const b = new Backoff<number>(1000, 1000);
    b.failed(1, 0);
    b.failed(2, 10_000);
    b.prune(5000);
    assert.deepEqual([...b.retryAts()], [[2, 11_000]]);
  });
});
