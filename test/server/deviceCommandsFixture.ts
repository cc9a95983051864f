// What the command channel's test files share: a fake agent long-polling its commands and answering
// them as a device API of sorts would, and the command rows a device has.
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import type { Server } from '../../src/server/server.js';
import { device, type Command } from './helpers.js';

export type DeviceAnswer = { status: number; body: string; headers?: Record<string, string> } | { error: string } | null;

/**
 * A fake agent: long-polls its commands and answers each with `answer(command)` (null: stays
 * silent). Stops when the test ends.
 */
export function fakeAgent(t: TestContext, base: string, key: string, answer: (c: Command) => DeviceAnswer | Promise<DeviceAnswer>) {
  const stop = new AbortController();
  const seen: Command[] = [];
  const link = device(base, key);
  let failure: Error | undefined;
  const loop = (async () => {
    while (!stop.signal.aborted) {
      try {
        const polled = await link.commands(30, stop.signal);
        for (const c of polled.commands) {
          seen.push(c);
          const a = await answer(c);
          if (a) assert.equal((await link.result(c.id, a)).status, 204);
        }
        if (polled.status === 503) return; // the server is closing as the test ends
        if (polled.status !== 200 && polled.status !== 204) throw new Error(`command poll: ${polled.status}`);
      } catch (err) {
        // the server going away as the test ends is no failure of the device
        if (!stop.signal.aborted && !(err instanceof TypeError && err.message === 'fetch failed')) failure = err as Error;
        return;
      }
    }
  })();
  t.after(async () => {
    stop.abort();
    await loop;
    if (failure) throw failure;
  });
  return { seen, loop };
}

/** A device API of sorts, answering the calls the tests make. */
export const deviceApi =
  (uuid: string) =>
  (c: Command): DeviceAnswer => {
    const { method, path: p, body } = c.payload;
    if (method === 'GET' && p === '/ping') return { status: 200, body: 'OK', headers: { 'content-type': 'text/plain' } };
    if (method === 'GET' && p === '/v1/device')
      return { status: 200, body: JSON.stringify({ uuid, status: 'Idle', update_pending: false }), headers: { 'content-type': 'application/json' } };
    if (method === 'POST' && p === '/v1/restart')
      return (body as { appId?: number } | undefined)?.appId ? { status: 200, body: 'OK' } : { status: 400, body: 'Missing app id' };
    if (method === 'POST' && p === '/v1/reboot') return { status: 423, body: JSON.stringify({ Data: '', Error: 'Updates are locked' }) };
    if (method === 'POST' && p === '/v1/blink') return { status: 200, body: '' };
    if (p === '/v1/explode') return { error: 'the device API is not running' };
    return { status: 404, body: JSON.stringify({ status: 'failed', message: `no ${method} ${p}` }) };
  };

export const commandRows = (server: Server, deviceId: string) =>
  server.db.selectFrom('device_command').selectAll().where('device_id', '=', deviceId).orderBy('id').execute();

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
