// The long-poll helper's wait: it listens before it looks, so a change made between the look and the
// wait is not missed; it stops at the deadline or when stopped, and leaves no listener behind.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { listenThenLook, waitFor } from '../../src/server/longPoll.js';
import { LocalNotifier } from '../../src/server/wakeups/localNotifier.js';

test('a change notified while the look runs (after listening) wakes the wait: it is not missed', async () => {
  const notifier = new LocalNotifier();
  let value: string | undefined;
  let looks = 0;
  const found = await waitFor(notifier, 'dev', Date.now() + 60_000, new AbortController().signal, async () => {
    looks++;
    if (looks === 1) {
      // the change lands after this look read the old value, before the wait
      value = 'new';
      await notifier.notify(['dev']);
      return undefined;
    }
    return value;
  });
  assert.equal(found, 'new');
  assert.equal(looks, 2);
});

test('waitFor looks once and gives up at the deadline; a stopped wait does not look at all', async () => {
  const notifier = new LocalNotifier();
  let looks = 0;
  assert.equal(await waitFor(notifier, 'dev', Date.now() + 20, new AbortController().signal, async () => (looks++, undefined)), undefined);
  assert.equal(looks, 1);
  const stopped = new AbortController();
  stopped.abort();
  assert.equal(await waitFor(notifier, 'dev', Date.now() + 60_000, stopped.signal, async () => (looks++, 'x')), undefined);
  assert.equal(looks, 1);
});

test('stopping a wait ends it at once and removes its listener from the stop signal', async () => {
  const notifier = new LocalNotifier();
  const stop = new AbortController();
  let listeners = 0;
  const signal = stop.signal;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = ((...a: Parameters<typeof add>) => (listeners++, add(...a))) as typeof add;
  signal.removeEventListener = ((...a: Parameters<typeof remove>) => (listeners--, remove(...a))) as typeof remove;
  const woke = listenThenLook(notifier, 'dev', 60_000, signal, async (woken) => woken);
  setTimeout(() => stop.abort(), 10);
  assert.equal(await woke, false);
  assert.equal(listeners, 0);
});
