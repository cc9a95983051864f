// The device's log lines waiting for the control plane, on disk (the agent database), bounded by
// lines and bytes. When full, the oldest lines not being sent go first, and one marker line takes
// their place ("N lines dropped"); a marker dropped in turn adds its count to the next one. A line's
// `seq` (the table's AUTOINCREMENT key, never reused) is its sequence number on the wire: the server
// skips lines it already stored, so a batch sent again after a lost answer is no duplicate. Lines
// leave the queue only once the server acknowledged them.
//
// Each line is stored as the JSON of a ShippedLogLine without its `seq`, which is added as it is sent.
// The queue also keeps, per container and stream, the engine time of its last line queued: following
// resumes there after a restart, in the same transaction as the lines, so a line is either queued and
// past its stream's cursor or neither.
import { randomHex } from '../randomHex.js';
import type { Transaction } from 'kysely';
import type { ShippedLogLine } from '../../shared/deviceLogs.js';
import type { AgentDb, AgentTables } from '../store/database.js';
import type { StreamCursors } from './logFollower.js';
import { isoTime } from '../../shared/isoTime.js';

export interface LogQueueLimits {
  /** default 10,000 */
  maxLines?: number;
  /** default 4 MiB (of line JSON) */
  maxBytes?: number;
}

/** Lines ready to send: NDJSON of ShippedLogLine, `seq` included. */
export interface LogBatch {
  ndjson: string;
  lines: number;
  lastSeq: number;
}

const META_KEY = 'log_queue';
const STREAMS = ['stdout', 'stderr'] as const;
const CHUNK = 200;

/** The line standing for `count` lines that were dropped before it. */
export const droppedMarker = (count: number, ts: string) =>
  JSON.stringify({ ts, stream: 'system', message: `${count} ${count === 1 ? 'line' : 'lines'} dropped: the device's log buffer was full` } satisfies Omit<
    ShippedLogLine,
    'seq'
  >);

export class LogQueue {
  /** the seq of the last line handed out by next() and not yet acknowledged or released */
  private inflight = 0;
  private readonly maxLines: number;
  private readonly maxBytes: number;

  private constructor(
    private readonly db: AgentDb,
    /** this queue's id: its sequence numbers mean something only with it */
    readonly id: string,
    /** when shipping began: where following starts for a container not seen before */
    readonly startedAt: string,
    /** container id → per stream, the engine time of its last line queued */
    readonly cursors: Map<string, StreamCursors>,
    private lines: number,
    private bytes: number,
    limits: LogQueueLimits,
  ) {
    this.maxLines = Math.max(2, limits.maxLines ?? 10_000);
    this.maxBytes = limits.maxBytes ?? 4 * 1024 * 1024;
  }

  /** Opens the queue; `now` (an engine time) is where a new one starts following. */
  static async open(db: AgentDb, now: string, limits: LogQueueLimits = {}): Promise<LogQueue> {
    const stored = await db.selectFrom('config').select('value').where('key', '=', META_KEY).executeTakeFirst();
    const meta = stored ? (JSON.parse(stored.value) as { id: string; since: string }) : { id: await randomHex(16), since: now };
    if (!stored)
      await db
        .insertInto('config')
        .values({ key: META_KEY, value: JSON.stringify(meta) })
        .execute();
    const cursors = new Map<string, StreamCursors>();
    for (const c of await db.selectFrom('log_stream_cursor').selectAll().execute())
      cursors.set(c.container_id, { ...cursors.get(c.container_id), [c.stream]: c.ts });
    const totals = await db
      .selectFrom('log_queue')
      .select((eb) => [eb.fn.countAll<number>().as('lines'), eb.fn.coalesce(eb.fn.sum<number>('bytes'), eb.lit(0)).as('bytes')])
      .executeTakeFirstOrThrow();
    return new LogQueue(db, meta.id, meta.since, cursors, Number(totals.lines), Number(totals.bytes), limits);
  }

  get size(): { lines: number; bytes: number } {
    return { lines: this.lines, bytes: this.bytes };
  }

  /** Queues lines (JSON without `seq`, oldest first) and the containers' new cursors, in one transaction. */
  async append(lines: readonly string[], cursors: ReadonlyMap<string, StreamCursors> = new Map()): Promise<void> {
    if (!lines.length && !cursors.size) return;
    const totals = await this.db.transaction().execute(async (tx) => {
      let added = 0;
      for (let i = 0; i < lines.length; i += CHUNK) {
        const rows = lines.slice(i, i + CHUNK).map((line) => ({ line, bytes: Buffer.byteLength(line), dropped: 0 }));
        await tx.insertInto('log_queue').values(rows).execute();
        added += rows.reduce((n, r) => n + r.bytes, 0);
      }
      for (const [container_id, streams] of cursors)
        for (const stream of STREAMS) {
          const ts = streams[stream];
          if (!ts) continue;
          await tx
            .insertInto('log_stream_cursor')
            .values({ container_id, stream, ts })
            .onConflict((oc) => oc.columns(['container_id', 'stream']).doUpdateSet({ ts }))
            .execute();
        }
      return this.dropExcess(tx, this.lines + lines.length, this.bytes + added);
    });
    this.lines = totals.lines;
    this.bytes = totals.bytes;
    for (const [id, streams] of cursors) this.cursors.set(id, { ...this.cursors.get(id), ...streams });
  }

  /**
   * The oldest lines, at most `maxLines` and about `maxBytes` (at least one line), now in flight:
   * they are not dropped until ack() or release().
   */
  async next(maxLines: number, maxBytes: number): Promise<LogBatch | undefined> {
    const heads = await this.db.selectFrom('log_queue').select(['seq', 'bytes']).orderBy('seq').limit(maxLines).execute();
    if (!heads.length) return undefined;
    let total = 0;
    let last = heads[0]!.seq;
    for (const h of heads) {
      if (total && total + h.bytes > maxBytes) break;
      total += h.bytes;
      last = h.seq;
    }
    this.inflight = last;
    const rows = await this.db.selectFrom('log_queue').select(['seq', 'line']).where('seq', '<=', last).orderBy('seq').execute();
    if (!rows.length) {
      this.inflight = 0;
      return undefined;
    }
    // every stored line is a JSON object: `{"seq":N,` takes the place of its `{`
    return { ndjson: rows.map((r) => `{"seq":${r.seq},${r.line.slice(1)}\n`).join(''), lines: rows.length, lastSeq: rows.at(-1)!.seq };
  }

  /** The server stored every line up to `seq`: they leave the queue. */
  async ack(seq: number): Promise<void> {
    const gone = await this.db.deleteFrom('log_queue').where('seq', '<=', seq).returning('bytes').execute();
    this.inflight = 0;
    this.lines -= gone.length;
    this.bytes -= gone.reduce((n, r) => n + r.bytes, 0);
  }

  /** The lines handed out were not delivered: they stay, and may be dropped again when the queue is full. */
  release(): void {
    this.inflight = 0;
  }

  /** Forgets the cursors of containers that no longer exist. */
  async forgetContainers(existing: ReadonlySet<string>): Promise<void> {
    const gone = [...this.cursors.keys()].filter((id) => !existing.has(id));
    for (let i = 0; i < gone.length; i += CHUNK)
      await this.db
        .deleteFrom('log_stream_cursor')
        .where('container_id', 'in', gone.slice(i, i + CHUNK))
        .execute();
    for (const id of gone) this.cursors.delete(id);
  }

  /**
   * Over a bound: the oldest lines not in flight go, up to where one marker line (which also counts)
   * fits, and the marker takes the seq of the last one dropped, so it is sent where they would have been.
   */
  private async dropExcess(tx: Transaction<AgentTables>, lines: number, bytes: number): Promise<{ lines: number; bytes: number }> {
    if (lines <= this.maxLines && bytes <= this.maxBytes) return { lines, bytes };
    const markerBytes = Buffer.byteLength(droppedMarker(this.maxLines, isoTime())) + 16;
    const fits = (l: number, b: number) => l + 1 <= this.maxLines && b + markerBytes <= this.maxBytes;
    let dropped = 0;
    let cut = 0;
    scan: for (let after = this.inflight; ; ) {
      const rows = await tx.selectFrom('log_queue').select(['seq', 'bytes', 'dropped']).where('seq', '>', after).orderBy('seq').limit(CHUNK).execute();
      for (const r of rows) {
        dropped += r.dropped || 1;
        lines -= 1;
        bytes -= r.bytes;
        cut = r.seq;
        if (fits(lines, bytes)) break scan;
      }
      if (rows.length < CHUNK) break;
      after = rows.at(-1)!.seq;
    }
    if (!cut) return { lines, bytes };
    // the marker is stamped with the time of the last line it stands for
    const last = await tx.selectFrom('log_queue').select('line').where('seq', '=', cut).executeTakeFirstOrThrow();
    const ts = (JSON.parse(last.line) as { ts: string }).ts;
    await tx.deleteFrom('log_queue').where('seq', '>', this.inflight).where('seq', '<=', cut).execute();
    const marker = droppedMarker(dropped, ts);
    await tx
      .insertInto('log_queue')
      .values({ seq: cut, line: marker, bytes: Buffer.byteLength(marker), dropped })
      .execute();
    return { lines: lines + 1, bytes: bytes + Buffer.byteLength(marker) };
  }
}
