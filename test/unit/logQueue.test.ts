// The agent's on-disk log queue: lines leave in order with their sequence numbers, only once
// acknowledged; a full queue drops its oldest lines (never those being sent) and says how many in one
// marker line where they were; batches respect their line and byte limits; everything, cursors
// included, survives a reopen.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { LogQueue } from '../../src/agent/logs/logQueue.js';
import { openAgentDb } from '../../src/agent/store/database.js';
import type { AgentDb } from '../../src/agent/store/database.js';

const START = '2024-05-01T10:00:00.000000000Z';

async function tempDb(t: TestContext): Promise<{ db: AgentDb; reopen(): Promise<AgentDb> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-logq-'));
  const file = path.join(dir, 'agent.sqlite');
  let db = await openAgentDb(file);
  t.after(async () => {
    await db.destroy();
    await fs.rm(dir, { recursive: true, force: true });
  });
  return {
    db,
    async reopen() {
      await db.destroy();
      db = await openAgentDb(file);
      return db;
    },
  };
}

/** Line `n` as the shipper queues it. */
const line = (n: number, pad = '') =>
  JSON.stringify({ ts: `2024-05-01T10:00:${String(n).padStart(2, '0')}.000000000Z`, stream: 'stdout', message: `line ${n}${pad}`, app_id: 1, service: 'web' });
const lines = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => line(from + i));

/** Everything the queue would send now, as the server receives it. */
async function drain(q: LogQueue): Promise<{ seq: number; ts: string; stream: string; message: string }[]> {
  const batch = await q.next(100_000, 1 << 30);
  q.release();
  return batch
    ? batch.ndjson
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as { seq: number; ts: string; stream: string; message: string })
    : [];
}

test('lines leave in order with increasing sequence numbers, only once acknowledged; numbers are never reused', async (t) => {
  const { db } = await tempDb(t);
  const q = await LogQueue.open(db, START);
  assert.equal(await q.next(10, 1 << 20), undefined, 'an empty queue has nothing to send');
  await q.append(lines(1, 5));
  const first = (await q.next(3, 1 << 20))!;
  const sent = first.ndjson
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as { seq: number; message: string; service: string });
  assert.deepEqual(
    sent.map((l) => l.message),
    ['line 1', 'line 2', 'line 3'],
  );
  assert.equal(sent[0]!.service, 'web', 'the line goes out as it was queued, with its seq added');
  assert.ok(sent[0]!.seq < sent[1]!.seq && sent[1]!.seq < sent[2]!.seq);
  assert.equal(first.lastSeq, sent[2]!.seq);

  // not acknowledged (the upload failed): the same lines again
  q.release();
  assert.deepEqual((await q.next(3, 1 << 20))!.ndjson, first.ndjson);
  await q.ack(first.lastSeq);
  assert.deepEqual(
    (await drain(q)).map((l) => l.message),
    ['line 4', 'line 5'],
  );
  assert.deepEqual(q.size.lines, 2);

  await q.ack(first.lastSeq + 2);
  assert.equal(q.size.lines, 0);
  await q.append(lines(6, 6));
  const [next] = await drain(q);
  assert.ok(next!.seq > first.lastSeq + 2, 'a new line never takes the number of one that left');
});

test('a batch holds at most so many lines and about so many bytes, and always at least one line', async (t) => {
  const { db } = await tempDb(t);
  const q = await LogQueue.open(db, START);
  const long = line(1, 'x'.repeat(500));
  await q.append([long, ...lines(2, 10)]);
  const byBytes = (await q.next(100, Buffer.byteLength(long) + Buffer.byteLength(line(2)) * 2 + 10))!;
  assert.equal(byBytes.lines, 3, 'the long line and two short ones fit');
  q.release();
  assert.equal((await q.next(100, 10))!.lines, 1, 'a line longer than the limit still goes, alone');
  q.release();
  assert.equal((await q.next(4, 1 << 20))!.lines, 4);
});

test('full: the oldest lines go, one marker in their place says how many; markers dropped in turn add up', async (t) => {
  const { db } = await tempDb(t);
  const q = await LogQueue.open(db, START, { maxLines: 5 });
  await q.append(lines(1, 8));
  let queued = await drain(q);
  assert.deepEqual(
    queued.map((l) => l.message),
    ["4 lines dropped: the device's log buffer was full", 'line 5', 'line 6', 'line 7', 'line 8'],
  );
  assert.equal(queued[0]!.stream, 'system');
  assert.equal(queued[0]!.ts, JSON.parse(line(4)).ts, 'the marker has the time of the last line it stands for');
  assert.ok(queued[0]!.seq < queued[1]!.seq, 'the marker is sent where the lines would have been');
  assert.equal(q.size.lines, 5);

  await q.append(lines(9, 11));
  queued = await drain(q);
  assert.deepEqual(
    queued.map((l) => l.message),
    ["7 lines dropped: the device's log buffer was full", 'line 8', 'line 9', 'line 10', 'line 11'],
  );
  assert.deepEqual(
    queued.map((l) => l.seq),
    [...queued.map((l) => l.seq)].sort((a, b) => a - b),
  );
});

test('full by bytes: as many of the oldest lines go as make room', async (t) => {
  const { db } = await tempDb(t);
  const size = Buffer.byteLength(line(10));
  const q = await LogQueue.open(db, START, { maxBytes: size * 6 });
  await q.append(lines(10, 19));
  const queued = await drain(q);
  assert.match(queued[0]!.message, /^\d+ lines dropped/);
  assert.equal(queued.at(-1)!.message, 'line 19');
  assert.ok(q.size.bytes <= size * 6, `${q.size.bytes} bytes kept`);
  const dropped = Number(/^(\d+)/.exec(queued[0]!.message)![1]);
  assert.equal(dropped + queued.length - 1, 10, 'every line is either kept or counted');
});

test('lines being sent are not dropped: the marker comes after them', async (t) => {
  const { db } = await tempDb(t);
  const q = await LogQueue.open(db, START, { maxLines: 4 });
  await q.append(lines(1, 4));
  const sending = (await q.next(2, 1 << 20))!;
  await q.append(lines(5, 7));
  await q.ack(sending.lastSeq);
  // lines 1 and 2 count against the bound but stay: 3 to 6 make room for the marker
  assert.deepEqual(
    (await drain(q)).map((l) => l.message),
    ["4 lines dropped: the device's log buffer was full", 'line 7'],
  );
});

test("the queue, its id and the containers' cursors survive a reopen; cursors of containers that are gone are forgotten", async (t) => {
  const { db, reopen } = await tempDb(t);
  const q = await LogQueue.open(db, START);
  assert.match(q.id, /^[A-Za-z0-9_-]{8,64}$/);
  await q.append(
    lines(1, 3),
    new Map([
      ['c1', { stdout: '2024-05-01T10:00:03.000000000Z' }],
      ['c2', { stdout: '2024-05-01T10:00:02.000000000Z', stderr: '2024-05-01T10:00:01.000000000Z' }],
    ]),
  );
  // one stream's cursor moves, the other's stays
  await q.append([], new Map([['c2', { stdout: '2024-05-01T10:00:09.000000000Z' }]]));
  const cursors = {
    c1: { stdout: '2024-05-01T10:00:03.000000000Z' },
    c2: { stdout: '2024-05-01T10:00:09.000000000Z', stderr: '2024-05-01T10:00:01.000000000Z' },
  };
  assert.deepEqual(Object.fromEntries(q.cursors), cursors);
  const again = await LogQueue.open(await reopen(), '2030-01-01T00:00:00.000000000Z');
  assert.equal(again.id, q.id);
  assert.equal(again.startedAt, START, 'following starts where shipping first began, not at this start');
  assert.deepEqual(Object.fromEntries(again.cursors), cursors);
  assert.deepEqual(again.size, q.size);
  assert.deepEqual(
    (await drain(again)).map((l) => l.message),
    ['line 1', 'line 2', 'line 3'],
  );
  await again.forgetContainers(new Set(['c2']));
  assert.deepEqual([...(await LogQueue.open(await reopen(), START)).cursors.keys()], ['c2']);
});
