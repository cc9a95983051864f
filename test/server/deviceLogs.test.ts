// Device logs on each storage backend: a device uploads gzip NDJSON batches with its key; operators
// read them (filters: service, since, limit) and follow them live (Server-Sent Events, across two
// PostgreSQL nodes too). A batch sent again is stored once, bad input is refused naming the field,
// retention by count and age prunes, and a device over its rate gets a "suppressed N lines" marker
// where its lines were dropped.
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { describe, test, type TestContext } from 'node:test';
import type { Server } from '../../src/server/server.js';
import type { StoredLogLine } from '../../src/server/logs/deviceLogs.js';
import { backends, nodes } from './backends.js';
import { listen, newDevice, until, user } from './helpers.js';
import { readSse } from './sseReader.js';

const QUEUE = 'queue-0001';
const T0 = Date.parse('2024-05-01T10:00:00Z');

interface Line {
  seq: number;
  ts: string;
  stream: string;
  message: string;
  app_id?: number;
  service?: string;
  release_id?: number;
}
/** Line `seq` of the web service, printed `seq` seconds after T0. */
const out = (seq: number, message = `line ${seq}`, extra: Partial<Line> = {}): Line => ({
  seq,
  ts: new Date(T0 + seq * 1000).toISOString(),
  stream: 'stdout',
  message,
  app_id: 12,
  service: 'web',
  release_id: 3,
  ...extra,
});
const system = (seq: number, message: string): Line => ({ seq, ts: new Date(T0 + seq * 1000).toISOString(), stream: 'system', message });
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => out(from + i));

/** A device's upload, over real HTTP as the agent makes it: gzip NDJSON unless told otherwise. */
async function upload(
  base: string,
  key: string,
  lines: Line[],
  opts: { queue?: string; plain?: boolean; body?: Buffer | string; encoding?: string; query?: string } = {},
) {
  const ndjson = lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
  const encoding = opts.encoding ?? (opts.plain ? undefined : 'gzip');
  const raw = opts.body ?? (encoding === 'gzip' ? gzipSync(ndjson) : ndjson);
  const res = await fetch(`${base}/device/v1/logs${opts.query ?? `?queue=${opts.queue ?? QUEUE}`}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/x-ndjson', ...(encoding ? { 'content-encoding': encoding } : {}) },
    body: typeof raw === 'string' ? raw : new Uint8Array(raw),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: (text ? JSON.parse(text) : {}) as { last_seq: number; stored: number; duplicates: number; suppressed: number; detail?: string; field?: string },
  };
}

type Stored = StoredLogLine;

async function logsOf(server: Server, deviceId: string, query = ''): Promise<Stored[]> {
  const res = await user(server)('GET', `/dongle/devices/${deviceId}/logs/${query}`);
  assert.equal(res.status, 200, res.text);
  return res.body as unknown as Stored[];
}
const messages = (lines: { message: string }[]) => lines.map((l) => l.message);

/** A live tail read as an EventSource would: every event's id and parsed data, as they come. */
function tail(t: TestContext, base: string, token: string, deviceId: string, query = '', headers: Record<string, string> = {}) {
  return readSse<{ id: string; data: Stored }>(
    t,
    `${base}/dongle/devices/${deviceId}/logs/tail/${query}`,
    { authorization: `APIToken ${token}`, ...headers },
    (f) => (f.data ? { id: f.id!, data: JSON.parse(f.data) as Stored } : undefined),
  );
}

for (const backend of backends()) {
  describe(`device logs on ${backend.name}`, () => {
    test('a gzip NDJSON batch is stored with its service identity and read back oldest first; a batch sent again is stored once', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const batch = [out(1, 'hello'), out(2, 'oops', { stream: 'stderr' }), system(3, 'Killing service web: its configuration changed')];

      assert.deepEqual((await upload(base, dev.key, batch)).body, { last_seq: 3, stored: 3, duplicates: 0, suppressed: 0 });
      const stored = await logsOf(server, dev.id);
      assert.deepEqual(
        stored.map(({ id: _, ...l }) => l),
        [
          { ts: '2024-05-01T10:00:01.000Z', stream: 'stdout', app_id: 12, service: 'web', release_id: 3, message: 'hello' },
          { ts: '2024-05-01T10:00:02.000Z', stream: 'stderr', app_id: 12, service: 'web', release_id: 3, message: 'oops' },
          {
            ts: '2024-05-01T10:00:03.000Z',
            stream: 'system',
            app_id: null,
            service: null,
            release_id: null,
            message: 'Killing service web: its configuration changed',
          },
        ],
      );
      assert.ok(stored[0]!.id < stored[1]!.id && stored[1]!.id < stored[2]!.id);

      // the answer was lost: the agent sends the same batch again, then one that overlaps it
      assert.deepEqual((await upload(base, dev.key, batch)).body, { last_seq: 3, stored: 0, duplicates: 3, suppressed: 0 });
      assert.deepEqual((await upload(base, dev.key, [out(3, 'hello'), out(4), out(5)], { plain: true })).body, {
        last_seq: 5,
        stored: 2,
        duplicates: 1,
        suppressed: 0,
      });
      assert.deepEqual(messages(await logsOf(server, dev.id)), ['hello', 'oops', 'Killing service web: its configuration changed', 'line 4', 'line 5']);

      // a new queue (the agent lost its database) numbers its lines from 1 again
      assert.equal((await upload(base, dev.key, [out(1, 'after a reset')], { queue: 'queue-0002' })).body.stored, 1);
      // nanosecond engine timestamps are stored to the millisecond, in UTC
      assert.equal((await upload(base, dev.key, [out(2, 'ns', { ts: '2024-05-01T12:00:00.123456789+02:00' })], { queue: 'queue-0002' })).body.stored, 1);
      assert.deepEqual(
        (await logsOf(server, dev.id, '?limit=2')).map((l) => [l.message, l.ts]),
        [
          ['after a reset', '2024-05-01T10:00:01.000Z'],
          ['ns', '2024-05-01T10:00:00.123Z'],
        ],
      );

      // each device has its own lines and sequence
      const other = await newDevice(server);
      assert.equal((await upload(base, other.key, [out(1, 'other device')])).body.stored, 1);
      assert.deepEqual(messages(await logsOf(server, other.id)), ['other device']);
    });

    test('bad uploads are refused naming the field; unknown keys and devices too', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      const refused = async (answer: Promise<{ status: number; body: { detail?: string; field?: string } }>, status: number, field?: string) => {
        const a = await answer;
        assert.equal(a.status, status, JSON.stringify(a.body));
        assert.ok(a.body.detail, 'the answer says why');
        if (field !== undefined) assert.equal(a.body.field, field, a.body.detail);
      };
      await refused(upload(base, dev.key, [out(1), out(2, 'x', { ts: 'yesterday' })]), 400, '/1/ts');
      await refused(upload(base, dev.key, [out(1), { ...out(2), colour: 'red' } as Line]), 400, '/1/colour');
      await refused(upload(base, dev.key, [out(1), out(2, 'x', { stream: 'stdlog' })]), 400, '/1/stream');
      await refused(upload(base, dev.key, [out(2), out(1)]), 400, '/1/seq');
      await refused(upload(base, dev.key, [], { body: gzipSync(`${JSON.stringify(out(1))}\n{not json\n`) }), 400, '/1');
      await refused(upload(base, dev.key, [out(1)], { query: '' }), 400, '/queue');
      await refused(upload(base, dev.key, [out(1)], { queue: 'bad queue!' }), 400, '/queue');
      await refused(upload(base, dev.key, [], { body: 'not gzip at all' }), 400);
      await refused(upload(base, dev.key, [out(1)], { encoding: 'br' }), 415);
      // 5 MiB of zeros compress to a few KiB: the inflated size counts
      await refused(upload(base, dev.key, [], { body: gzipSync(Buffer.alloc(5 * 1024 * 1024, 0x20)) }), 413);
      await refused(upload(base, 'bsd_nope', [out(1)]), 401);
      assert.deepEqual(await logsOf(server, dev.id), [], 'nothing of it was stored');

      const call = user(server);
      assert.equal((await call('GET', '/dongle/devices/no-such-device/logs/')).status, 404);
      assert.equal((await call('GET', `/dongle/devices/${dev.id}/logs/`, undefined, '')).status, 401);
      const since = await call('GET', `/dongle/devices/${dev.id}/logs/?since=yesterday`);
      assert.equal(since.status, 400);
      assert.equal(since.body.field, '/since');
      assert.equal((await call('GET', `/dongle/devices/${dev.id}/logs/?limit=0`)).body.field, '/limit');
    });

    test('filters: a service, since a time, the newest few', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const dev = await newDevice(server);
      await upload(base, dev.key, [
        out(1, 'web 1'),
        out(2, 'db 1', { service: 'db' }),
        system(3, 'Starting service web'),
        out(4, 'web 2'),
        out(5, 'db 2', { service: 'db' }),
      ]);
      assert.deepEqual(messages(await logsOf(server, dev.id, '?service=db')), ['db 1', 'db 2']);
      assert.deepEqual(messages(await logsOf(server, dev.id, `?since=${new Date(T0 + 3000).toISOString()}`)), ['Starting service web', 'web 2', 'db 2']);
      assert.deepEqual(messages(await logsOf(server, dev.id, '?since=2024-05-01T12:00:04%2B02:00&service=web')), ['web 2'], 'since takes any offset');
      assert.deepEqual(messages(await logsOf(server, dev.id, '?limit=2')), ['web 2', 'db 2'], 'the newest, oldest first');
      assert.deepEqual(messages(await logsOf(server, dev.id, '?service=web&limit=1')), ['web 2']);
      assert.deepEqual(await logsOf(server, dev.id, '?service=cache'), []);
    });

    test("retention by count: a periodic prune keeps each device's newest lines", async (t) => {
      const server = await backend.start(t, { logs: { maxLinesPerDevice: 5, pruneEveryMs: 50 } });
      const base = await listen(server);
      const dev = await newDevice(server);
      const quiet = await newDevice(server);
      await upload(base, dev.key, range(1, 8));
      await upload(base, quiet.key, range(1, 3));
      await until('the prune', async () => (await logsOf(server, dev.id, '?limit=100')).length === 5);
      assert.deepEqual(messages(await logsOf(server, dev.id)), ['line 4', 'line 5', 'line 6', 'line 7', 'line 8']);
      await upload(base, dev.key, range(9, 10));
      await until('the next prune', async () => (await logsOf(server, dev.id)).length === 5);
      assert.deepEqual(messages(await logsOf(server, dev.id)), ['line 6', 'line 7', 'line 8', 'line 9', 'line 10']);
      assert.equal((await logsOf(server, quiet.id)).length, 3, 'a device under the limit keeps everything');
    });

    test('retention by age: lines go once they are older than the retention period', async (t) => {
      const server = await backend.start(t, { logs: { maxAgeMs: 400, pruneEveryMs: 3_600_000 } });
      const base = await listen(server);
      const dev = await newDevice(server);
      await upload(base, dev.key, range(1, 3));
      await new Promise((r) => setTimeout(r, 500));
      await upload(base, dev.key, range(4, 5));
      assert.deepEqual(await server.deviceLogs.prune(), { byAge: 3, byCount: 0 });
      assert.deepEqual(messages(await logsOf(server, dev.id)), ['line 4', 'line 5']);
    });

    test("rate limit: beyond its rate a device's lines are dropped, and one marker in their place says how many", async (t) => {
      const server = await backend.start(t, { logs: { linesPerMinute: 60, burstLines: 5 } });
      const base = await listen(server);
      const dev = await newDevice(server);
      assert.deepEqual((await upload(base, dev.key, range(1, 8))).body, { last_seq: 8, stored: 5, duplicates: 0, suppressed: 3 });
      const stored = await logsOf(server, dev.id);
      assert.deepEqual(messages(stored), [
        'line 1',
        'line 2',
        'line 3',
        'line 4',
        'line 5',
        'suppressed 3 lines: the device sent more than 60 lines per minute',
      ]);
      assert.equal(stored[5]!.stream, 'system');
      assert.equal(stored[5]!.ts, out(6).ts, 'the marker is where the first dropped line was');
      // what was suppressed is gone, not postponed: the agent may forget it
      assert.equal((await upload(base, dev.key, range(1, 8))).body.duplicates, 8);
      // the bucket refills at the sustained rate (1 line/s here)
      await new Promise((r) => setTimeout(r, 1100));
      assert.deepEqual((await upload(base, dev.key, range(9, 11))).body, { last_seq: 11, stored: 1, duplicates: 0, suppressed: 2 });
      assert.deepEqual(messages(await logsOf(server, dev.id, '?limit=2')), ['line 9', 'suppressed 2 lines: the device sent more than 60 lines per minute']);
      // another device has its own budget
      const other = await newDevice(server);
      assert.equal((await upload(base, other.key, range(1, 5))).body.stored, 5);
    });

    test('live tail: the newest lines, then each new one as it arrives; a service only; Last-Event-ID resumes', async (t) => {
      const server = await backend.start(t);
      const base = await listen(server);
      const token = server.firstAdminToken!;
      const dev = await newDevice(server);
      await upload(base, dev.key, [out(1, 'old 1'), out(2, 'old 2'), out(3, 'old 3')]);

      const live = await tail(t, base, token, dev.id, '?limit=2');
      assert.equal(live.status, 200);
      assert.match(live.type!, /^text\/event-stream/);
      const web = await tail(t, base, token, dev.id, '?service=db&limit=0');
      await until('the backlog', () => live.events.length === 2);
      assert.deepEqual(messages(live.events.map((e) => e.data)), ['old 2', 'old 3']);

      await upload(base, dev.key, [out(4, 'new 1'), out(5, 'db says hi', { service: 'db' })]);
      await upload(base, dev.key, [out(6, 'new 2')]);
      await until('the new lines', () => live.events.length === 5);
      assert.deepEqual(messages(live.events.map((e) => e.data)), ['old 2', 'old 3', 'new 1', 'db says hi', 'new 2']);
      assert.deepEqual(
        live.events.map((e) => e.id),
        live.events.map((e) => String(e.data.id)),
        'each event carries its line id',
      );
      await until('the db line', () => web.events.length === 1);
      assert.deepEqual(messages(web.events.map((e) => e.data)), ['db says hi']);

      // reconnecting after line "old 3": everything after it, nothing before
      const resumed = await tail(t, base, token, dev.id, '?limit=100', { 'last-event-id': live.events[1]!.id });
      await until('the resumed tail', () => resumed.events.length === 3);
      assert.deepEqual(messages(resumed.events.map((e) => e.data)), ['new 1', 'db says hi', 'new 2']);

      const call = user(server);
      assert.equal((await call('GET', '/dongle/devices/nope/logs/tail/')).status, 404);
      assert.equal((await call('GET', `/dongle/devices/${dev.id}/logs/tail/`, undefined, '')).status, 401);
      // closing the server ends open tails (t.after would hang otherwise)
    });

    test('the live tail on one node sees lines uploaded through another', { skip: backend.name === 'sqlite' && 'one SQLite server is one node' }, async (t) => {
      const [a, b] = await nodes(t, backend.name, 2);
      const baseA = await listen(a!);
      const baseB = await listen(b!);
      const dev = await newDevice(a!);
      const live = await tail(t, baseB, b!.firstAdminToken!, dev.id, '?limit=0');
      await new Promise((r) => setTimeout(r, 200));
      await upload(baseA, dev.key, range(1, 2));
      await until('the lines on the other node', () => live.events.length === 2);
      assert.deepEqual(messages(live.events.map((e) => e.data)), ['line 1', 'line 2']);
      // one batch sent to both nodes at once is stored once
      const both = await Promise.all([upload(baseA, dev.key, range(3, 4)), upload(baseB, dev.key, range(3, 4))]);
      assert.deepEqual(both.map((r) => r.body.stored).sort(), [0, 2]);
      await until('the batch on the other node', () => live.events.length === 4);
      assert.deepEqual(messages(await logsOf(b!, dev.id)), ['line 1', 'line 2', 'line 3', 'line 4']);
    });
  });
}
