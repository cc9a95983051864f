// The log shipper and its follower, fed by a narrow fake of the engine's log calls that sends
// frames as the engine multiplexes them (the demultiplexing is dockerode's own): which lines reach
// the queue on disk, and where a resumed log goes on.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { test, type TestContext } from 'node:test';
import Docker from 'dockerode';
import { EventLog } from '../../src/agent/eventLog.js';
import { LogQueue } from '../../src/agent/logs/logQueue.js';
import { LogShipper } from '../../src/agent/logs/logShipper.js';
import { openAgentDb, type AgentDb } from '../../src/agent/store/database.js';

/** One frame of the engine’s multiplexed log (1 stdout, 2 stderr): a line stamped `nanos` into a time to come. */
function frame(stream: 1 | 2, nanos: number, text: string): Buffer {
  const payload = Buffer.from(`2099-01-01T00:00:00.${String(nanos).padStart(9, '0')}Z ${text}\n`);
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** The engine's `since` (unix seconds, nanoseconds as fraction) as the nanos into 2099 of `frame`. */
const sinceNanos = (since: string) => {
  const [seconds, fraction = '0'] = since.split('.');
  return (Number(seconds) - Date.parse('2099-01-01T00:00:00Z') / 1000) * 1e9 + Number(fraction.padEnd(9, '0'));
};
const nanosOf = (f: Buffer) => Number(/\.(\d{9})Z/.exec(f.subarray(8).toString())![1]);

/**
 * The engine calls the follower makes, for one running container whose log holds `frames` (in the
 * order written): it sends those stamped from `since` on, and stays open. `asked` gets each `since`.
 */
function engineSending(frames: Buffer[], asked: number[] = []): Docker {
  const labels = { 'io.balena.supervised': 'true', 'io.balena.app-id': '1', 'io.balena.service-name': 'web' };
  return {
    modem: new Docker({ socketPath: '/nonexistent' }).modem,
    getEvents: async () => new PassThrough(),
    listContainers: async () => [{ Id: 'c1', Labels: labels }],
    getContainer: () => ({
      logs: async ({ since }: { since: string }) => {
        asked.push(sinceNanos(String(since)));
        const raw = new PassThrough();
        raw.write(Buffer.concat(frames.filter((f) => nanosOf(f) >= sinceNanos(String(since)))));
        return raw;
      },
    }),
  } as unknown as Docker;
}

/** Runs a shipper (never registered, so nothing leaves the queue) until `frames` were taken; what the queue holds. */
async function shipped(db: AgentDb, frames: Buffer[], asked?: number[]): Promise<string[]> {
  const shipper = await LogShipper.start({
    endpoint: 'http://127.0.0.1:9',
    deviceKey: () => undefined,
    docker: engineSending(frames, asked),
    scope: undefined,
    log: new EventLog('silent'),
    db,
    flushMs: 10,
  });
  await new Promise((r) => setTimeout(r, 200));
  await shipper.stop();
  const batch = await (await LogQueue.open(db, '')).next(1000, 1 << 20);
  return (batch?.ndjson.trim().split('\n') ?? [])
    .map((l) => JSON.parse(l) as { stream: string; message: string })
    .filter((l) => l.stream !== 'system')
    .map((l) => `${l.stream} ${l.message}`);
}

async function tempDb(t: TestContext): Promise<AgentDb> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-shipper-'));
  const db = await openAgentDb(path.join(dir, 'agent.sqlite'));
  t.after(async () => {
    await db.destroy();
    await fs.rm(dir, { recursive: true, force: true });
  });
  return db;
}

test('a line stamped before the other stream’s line that came first is kept; a resumed log does not send a line twice', async (t) => {
  const db = await tempDb(t);
  // the engine stamps stdout and stderr apart: here stderr's later line is written first
  const first = [frame(2, 2, 'tenth 1'), frame(1, 1, 'tick 1')];
  assert.deepEqual(await shipped(db, first), ['stderr tenth 1', 'stdout tick 1']);

  // the agent starts again: the log resumes at its cursor, so the engine sends both lines again
  const resumed = [...first, frame(1, 3, 'tick 2')];
  assert.deepEqual(await shipped(db, resumed), ['stderr tenth 1', 'stdout tick 1', 'stdout tick 2']);
});

test('after a restart, a stream resumes at its own cursor: its line stamped before the other stream’s last line taken is not lost', async (t) => {
  const db = await tempDb(t);
  // the agent stopped after stdout's line at 2 and before stderr's line at 1, written after it
  assert.deepEqual(await shipped(db, [frame(1, 2, 'tick 1')]), ['stdout tick 1']);
  const asked: number[] = [];
  const log = [frame(1, 2, 'tick 1'), frame(2, 1, 'tenth 1'), frame(1, 3, 'tick 2')];
  assert.deepEqual(await shipped(db, log, asked), ['stdout tick 1', 'stderr tenth 1', 'stdout tick 2']);
  // from before stderr's line (stderr had no cursor: shipping began earlier), but not from where it began
  assert.ok(asked[0]! <= 1 && asked[0]! >= -5e9, `asked since ${asked[0]}`);

  // both streams have cursors now: a third start sends only what is new on each
  const more = [...log, frame(2, 4, 'tenth 2')];
  assert.deepEqual(await shipped(db, more), ['stdout tick 1', 'stderr tenth 1', 'stdout tick 2', 'stderr tenth 2']);
});
