// The devices' logs on the server: batches the agents upload are stored in order, each line once;
// a device sending more than its rate is cut short, with a marker line in place of what was
// dropped; a periodic prune keeps per device at most so many lines, none older than so long. A
// stored batch wakes the live tails of its device, on every server node (the target notifier,
// key `logs:<device id>`). A gateway's lines for its dependent devices are its own, marked with the
// dependent device's uuid: they count against its retention and rate, and are read apart from its own.
//
// Per device, `device_log_state` holds the sequence number of the last line stored (lines at or
// below it are skipped: a batch sent again after a lost answer), the id of the agent's log queue the
// numbers belong to (a new queue starts over), the number of lines kept (retention by count) and the
// rate limit's token bucket. An upload takes the row's lock, so two nodes given the same batch at
// once store it once, and a device's line ids grow in the order its uploads commit.
import { PostgresAdapter, type SelectQueryBuilder } from 'kysely';
import type { LogStream, ShippedLogLine } from '../../shared/deviceLogs.js';
import { ValidationError } from '../../shared/errors.js';
import type { ServerDb, ServerTables } from '../db/database.js';
import type { DeviceNotifier } from '../wakeups/notifier.js';
import { PeriodicTask } from '../periodicTask.js';

export interface DeviceLogsOptions {
  /** lines kept per device, the oldest pruned first (default 10,000) */
  maxLinesPerDevice?: number;
  /** lines are pruned this long after they arrived (default 7 days) */
  maxAgeMs?: number;
  /** lines a device may send per minute, sustained (default 3000); more are suppressed, with a marker */
  linesPerMinute?: number;
  /** lines a device may send at once on top of that: a backlog after an offline period (default 20,000) */
  burstLines?: number;
  /** how often each server node prunes (default every minute) */
  pruneEveryMs?: number;
}

/** A stored line, as operators read it. */
export interface StoredLogLine {
  id: number;
  ts: string;
  stream: LogStream;
  app_id: number | null;
  service: string | null;
  release_id: number | null;
  message: string;
}

export interface LogFilter {
  service?: string;
  /** the lines of this dependent device of the device (a gateway); default: the device's own lines */
  dependent?: string;
  /** lines printed at or after this time (RFC 3339) */
  since?: string;
}

export interface IngestResult {
  /** every line up to this sequence number is stored: the agent may forget them */
  last_seq: number;
  stored: number;
  duplicates: number;
  suppressed: number;
}

export const logsKey = (deviceId: string) => `logs:${deviceId}`;

const CHUNK = 500;
type Row = Omit<ServerTables['device_log'], 'id'>;
type LineIds = SelectQueryBuilder<ServerTables, 'device_log', { id: number | string }>;
const columns = ['id', 'ts', 'stream', 'app_id', 'service', 'release_id', 'message'] as const;

export class DeviceLogs {
  readonly maxLines: number;
  readonly maxAgeMs: number;
  readonly perMinute: number;
  readonly burst: number;
  private readonly postgres: boolean;
  private readonly pruning: PeriodicTask;

  constructor(
    private readonly db: ServerDb,
    private readonly notifier: DeviceNotifier,
    opts: DeviceLogsOptions = {},
  ) {
    this.maxLines = opts.maxLinesPerDevice ?? 10_000;
    this.maxAgeMs = opts.maxAgeMs ?? 7 * 24 * 60 * 60_000;
    this.perMinute = opts.linesPerMinute ?? 3000;
    this.burst = opts.burstLines ?? 20_000;
    this.pruning = new PeriodicTask(() => this.prune(), opts.pruneEveryMs ?? 60_000);
    this.postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  }

  /**
   * Stores a batch of the device's lines (in `seq` order) from its log queue `queueId`; lines of the
   * dependent devices in `dropDependents` (another gateway's) count as received but are not stored.
   */
  async ingest(deviceId: string, queueId: string, lines: readonly ShippedLogLine[], dropDependents?: ReadonlySet<string>): Promise<IngestResult> {
    lines.forEach((l, i) => {
      if (i && l.seq <= lines[i - 1]!.seq) throw new ValidationError(`/${i}/seq`, 'must be greater than the line before', 'log batch');
    });
    const now = new Date();
    const receivedAt = now.toISOString();
    const result = await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('device_log_state')
        .values({ device_id: deviceId, queue_id: queueId, last_seq: 0, lines: 0, tokens: this.burst, tokens_at: receivedAt })
        .onConflict((oc) => oc.column('device_id').doNothing())
        .execute();
      const query = tx.selectFrom('device_log_state').selectAll().where('device_id', '=', deviceId);
      const state = await (this.postgres ? query.forUpdate() : query).executeTakeFirstOrThrow();
      const lastSeq = state.queue_id === queueId ? Number(state.last_seq) : 0;
      const fresh = lines.filter((l) => l.seq > lastSeq && !(l.dependent_uuid && dropDependents?.has(l.dependent_uuid)));
      // the token bucket: refilled at the sustained rate since the last upload, up to the burst
      const elapsed = Math.max(0, now.getTime() - Date.parse(state.tokens_at));
      const tokens = Math.min(this.burst, state.tokens + (elapsed * this.perMinute) / 60_000);
      const allowed = Math.min(fresh.length, Math.floor(tokens));
      const suppressed = fresh.length - allowed;
      const rows: Row[] = fresh.slice(0, allowed).map((l) => ({
        device_id: deviceId,
        ts: new Date(l.ts).toISOString(),
        received_at: receivedAt,
        stream: l.stream,
        app_id: l.app_id ?? null,
        service: l.service === undefined ? null : clean(l.service),
        release_id: l.release_id ?? null,
        message: clean(l.message),
        dependent_uuid: l.dependent_uuid ?? null,
      }));
      if (suppressed) {
        rows.push({
          device_id: deviceId,
          ts: new Date(fresh[allowed]!.ts).toISOString(),
          received_at: receivedAt,
          stream: 'system',
          app_id: null,
          service: null,
          release_id: null,
          dependent_uuid: null,
          message: `suppressed ${suppressed} ${suppressed === 1 ? 'line' : 'lines'}: the device sent more than ${this.perMinute} lines per minute`,
        });
      }
      for (let i = 0; i < rows.length; i += CHUNK)
        await tx
          .insertInto('device_log')
          .values(rows.slice(i, i + CHUNK))
          .execute();
      const last = Math.max(lastSeq, lines.at(-1)?.seq ?? 0);
      await tx
        .updateTable('device_log_state')
        .set({ queue_id: queueId, last_seq: last, lines: Number(state.lines) + rows.length, tokens: tokens - allowed, tokens_at: receivedAt })
        .where('device_id', '=', deviceId)
        .execute();
      const duplicates = lines.filter((l) => l.seq <= lastSeq).length;
      return { last_seq: last, stored: allowed, duplicates, suppressed, inserted: rows.length };
    });
    if (result.inserted) await this.notifier.notify([logsKey(deviceId)]);
    const { inserted: _, ...answer } = result;
    return answer;
  }

  /**
   * The device's lines, oldest first: after line `afterId` (the first `limit` of them), else the
   * newest `limit` (up to line `upTo`, when given).
   */
  async read(deviceId: string, filter: LogFilter & { afterId?: number; upTo?: number; limit: number }): Promise<StoredLogLine[]> {
    let q = this.db
      .selectFrom('device_log')
      .select(columns)
      .where('device_id', '=', deviceId)
      .where('dependent_uuid', filter.dependent === undefined ? 'is' : '=', filter.dependent ?? null);
    if (filter.service !== undefined) q = q.where('service', '=', filter.service);
    if (filter.since !== undefined) q = q.where('ts', '>=', new Date(filter.since).toISOString());
    if (filter.upTo !== undefined) q = q.where('id', '<=', filter.upTo);
    const rows =
      filter.afterId !== undefined
        ? await q.where('id', '>', filter.afterId).orderBy('id').limit(filter.limit).execute()
        : (await q.orderBy('id', 'desc').limit(filter.limit).execute()).reverse();
    return rows.map((r) => ({ ...r, id: Number(r.id) }));
  }

  /** The id of the device's newest line (0 when it has none). */
  async lastId(deviceId: string): Promise<number> {
    const row = await this.db
      .selectFrom('device_log')
      .select((eb) => eb.fn.max('id').as('id'))
      .where('device_id', '=', deviceId)
      .executeTakeFirst();
    return Number(row?.id ?? 0);
  }

  /** Deletes the lines of a dependent device of the device (it was deleted). */
  forget(deviceId: string, dependentUuid: string): Promise<number> {
    return this.drop(deviceId, (q) => q.where('dependent_uuid', '=', dependentUuid));
  }

  /** Deletes lines older than the retention age, then each device's oldest beyond its count. */
  async prune(): Promise<{ byAge: number; byCount: number }> {
    const cutoff = new Date(Date.now() - this.maxAgeMs).toISOString();
    let byAge = 0;
    const old = await this.db.selectFrom('device_log').select('device_id').distinct().where('received_at', '<', cutoff).execute();
    for (const { device_id } of old) byAge += await this.drop(device_id, (q) => q.where('received_at', '<', cutoff));
    let byCount = 0;
    const over = await this.db.selectFrom('device_log_state').select(['device_id', 'lines']).where('lines', '>', this.maxLines).execute();
    for (const { device_id, lines } of over) {
      const excess = Number(lines) - this.maxLines;
      byCount += await this.drop(device_id, (q) => q.orderBy('id').limit(excess));
    }
    return { byAge, byCount };
  }

  /** Prunes every `pruneEveryMs` on this node (each node does: a prune finding nothing costs little). */
  startPruning(onError: (err: Error) => void): void {
    this.pruning.start(onError);
  }

  stopPruning(): Promise<void> {
    return this.pruning.stop();
  }

  /** Deletes the device's lines that `pick` selects, and takes them off its count, in one transaction. */
  private async drop(deviceId: string, pick: (q: LineIds) => LineIds): Promise<number> {
    return this.db.transaction().execute(async (tx) => {
      const ids = pick(tx.selectFrom('device_log').select('id').where('device_id', '=', deviceId));
      const { numDeletedRows } = await tx.deleteFrom('device_log').where('id', 'in', ids).executeTakeFirst();
      const n = Number(numDeletedRows);
      if (n)
        await tx
          .updateTable('device_log_state')
          .set((eb) => ({ lines: eb('lines', '-', n).$castTo<number>() }))
          .where('device_id', '=', deviceId)
          .execute();
      return n;
    });
  }
}

/** PostgreSQL's text takes no NUL character: a service printing one must not make its batch fail for ever. */
const clean = (text: string) => (text.includes('\u0000') ? text.replaceAll('\u0000', '\uFFFD') : text);
