// The telemetry logbook's storage: batches of points uploaded by devices, and reads of one series
// (a device's field of one type) raw or in buckets, in the shapes of AutoPi's logbook. The same SQL
// on SQLite and PostgreSQL; times are µs since the epoch (bigint).
import { PostgresAdapter, sql, type RawBuilder } from 'kysely';
import { formatTsMicros, formatTsMillis, type Point } from '../../shared/telemetry.js';
import { inChunks, nowIso, type ServerDb } from '../db/database.js';
import { PeriodicTask } from '../periodicTask.js';
import { MINUTE_US, minuteRows, readPlan } from './buckets.js';
import type { Aggregation, ReadQuery } from './readQuery.js';

/** A raw read finding more points than this is refused (narrow the range, or aggregate). */
export const MAX_RAW_POINTS = 100_000;
/** Series ids kept in memory per server node; the cache starts over beyond this. */
const MAX_CACHED_SERIES = 100_000;

export type RawPoint = { ts: string; value: number | boolean | string } | { ts: string; location: { lat: number; lon: number } };
export interface Bucket {
  /** the bucket's last point, ms since the epoch */
  max_ts: number;
  /** the bucket's first point */
  ts: string;
  value: number;
}

// A point's row holds its value in the column(s) of its type: num (float, int, and bool as 0/1),
// str, or lat and lon. Rows of one kind are inserted together, with only their columns.
type NumericRow = { series_id: number; ts: number; num: number };
type TextRow = { series_id: number; ts: number; str: string };
type GeoRow = { series_id: number; ts: number; lat: number; lon: number };
type PointRow = NumericRow | TextRow | GeoRow;
/** the PostgreSQL type of every column inserted */
const COLUMN_TYPES: Record<string, string> = {
  series_id: 'integer',
  ts: 'bigint',
  num: 'float8',
  str: 'text',
  lat: 'float8',
  lon: 'float8',
  minute: 'bigint',
  n: 'bigint',
  vsum: 'float8',
  vmin: 'float8',
  vmax: 'float8',
  min_ts: 'bigint',
  max_ts: 'bigint',
};

// value of a bucket from the per-minute rows and the points' rows, which share these columns
const AGGREGATE: Record<Aggregation, RawBuilder<number>> = {
  avg: sql`sum(vsum) / cast(sum(n) as double precision)`,
  sum: sql`sum(vsum)`,
  min: sql`min(vmin)`,
  max: sql`max(vmax)`,
  count: sql`sum(n)`,
};

export interface LogbookOptions {
  /** points (and their per-minute aggregates) are deleted once older than this (default 365 days) */
  retentionMs?: number;
  /** how often each server node prunes (default hourly) */
  pruneEveryMs?: number;
}

const DAY_MS = 24 * 60 * 60_000;
/** Batch ids are kept this long: a device that lost an answer may send its batch again after a long offline period. */
const BATCH_ID_RETENTION_MS = 30 * DAY_MS;

export class Logbook {
  /** `device \n field \n type` → series id */
  private readonly series = new Map<string, number>();
  readonly retentionMs: number;
  private readonly pruning: PeriodicTask;

  constructor(
    private readonly db: ServerDb,
    opts: LogbookOptions = {},
  ) {
    this.retentionMs = opts.retentionMs ?? 365 * DAY_MS;
    this.pruning = new PeriodicTask(() => this.prune(), opts.pruneEveryMs ?? 60 * 60_000);
  }

  /**
   * Deletes points older than the retention (a series at a time, along its index), the per-minute
   * aggregates of minutes wholly older, and batch ids past theirs.
   */
  async prune(now = Date.now()): Promise<{ points: number; batches: number }> {
    const cutoffUs = (now - this.retentionMs) * 1000;
    let points = 0;
    const series = await this.db.selectFrom('telemetry_series').select('id').execute();
    for (const part of inChunks(
      series.map((s) => s.id),
      500,
    )) {
      const deleted = await this.db.deleteFrom('telemetry_point').where('series_id', 'in', part).where('ts', '<', cutoffUs).executeTakeFirst();
      points += Number(deleted.numDeletedRows);
      await this.db
        .deleteFrom('telemetry_minute')
        .where('series_id', 'in', part)
        .where('minute', '<=', cutoffUs - MINUTE_US)
        .execute();
    }
    const batches = await this.db
      .deleteFrom('telemetry_batch')
      .where('received_at', '<', new Date(now - BATCH_ID_RETENTION_MS).toISOString())
      .executeTakeFirst();
    return { points, batches: Number(batches.numDeletedRows) };
  }

  startPruning(onError: (err: Error) => void): void {
    this.pruning.start(onError);
  }

  stopPruning(): Promise<void> {
    return this.pruning.stop();
  }

  /**
   * Stores a device's batch of points with their per-minute aggregates, in one transaction. A batch
   * id the device sent before is not stored again (`duplicate`): the device retries a batch whose
   * answer it did not get.
   */
  async store(deviceId: string, batch: string, points: readonly Point[]): Promise<{ stored: number; duplicate: boolean }> {
    const ids = await this.seriesIds(deviceId, points);
    const numeric: NumericRow[] = [];
    const text: TextRow[] = [];
    const geo: GeoRow[] = [];
    for (const p of points) {
      const series_id = ids.get(`${p.field}\n${p.type}`)!;
      const v = p.value;
      if (typeof v === 'object') geo.push({ series_id, ts: p.ts, lat: v.lat, lon: v.lon });
      else if (typeof v === 'string') text.push({ series_id, ts: p.ts, str: v });
      else numeric.push({ series_id, ts: p.ts, num: Number(v) });
    }
    return this.db.transaction().execute(async (tx) => {
      const first = await tx
        .insertInto('telemetry_batch')
        .values({ device_id: deviceId, batch, points: points.length, received_at: nowIso() })
        .onConflict((oc) => oc.columns(['device_id', 'batch']).doNothing())
        .executeTakeFirst();
      if (!first.numInsertedOrUpdatedRows) return { stored: 0, duplicate: true };
      const postgres = this.db.getExecutor().adapter instanceof PostgresAdapter;
      for (const rows of [numeric, text, geo] as PointRow[][]) {
        if (!rows.length) continue;
        const source = rowsSource(postgres, rows);
        await tx.insertInto('telemetry_point').columns(source.columns).expression(source.select).execute();
      }
      // SQLite's two-argument min() and max() are PostgreSQL's least() and greatest()
      const least = sql.raw(postgres ? 'least' : 'min');
      const greatest = sql.raw(postgres ? 'greatest' : 'max');
      const minutes = rowsSource(postgres, minuteRows([...numeric, ...text, ...geo]));
      await tx
        .insertInto('telemetry_minute')
        .columns(minutes.columns)
        .expression(minutes.select)
        .onConflict((oc) =>
          oc.columns(['series_id', 'minute']).doUpdateSet({
            n: sql`telemetry_minute.n + excluded.n`,
            vsum: sql`telemetry_minute.vsum + excluded.vsum`,
            vmin: sql`${least}(telemetry_minute.vmin, excluded.vmin)`,
            vmax: sql`${greatest}(telemetry_minute.vmax, excluded.vmax)`,
            min_ts: sql`${least}(telemetry_minute.min_ts, excluded.min_ts)`,
            max_ts: sql`${greatest}(telemetry_minute.max_ts, excluded.max_ts)`,
          }),
        )
        .execute();
      return { stored: points.length, duplicate: false };
    });
  }

  /** Whether the device exists (the read answers 404 otherwise). */
  async hasDevice(deviceId: string): Promise<boolean> {
    return !!(await this.db.selectFrom('device').select('id').where('id', '=', deviceId).executeTakeFirst());
  }

  /** The device's series (field and type, by field), each with the time of its newest point. */
  async fields(deviceId: string): Promise<{ field: string; type: string; last_ts: string | null }[]> {
    const rows = await this.db
      .selectFrom('telemetry_series as s')
      .select((eb) => [
        's.field',
        's.type',
        eb
          .selectFrom('telemetry_point as p')
          .select((p) => p.fn.max('p.ts').as('m'))
          .whereRef('p.series_id', '=', 's.id')
          .as('last'),
      ])
      .where('s.device_id', '=', deviceId)
      .orderBy('s.field')
      .orderBy('s.type')
      .execute();
    return rows.map((r) => ({ field: r.field, type: r.type, last_ts: r.last === null || r.last === undefined ? null : formatTsMicros(Number(r.last)) }));
  }

  /** Raw points, oldest first; undefined when there are more than MAX_RAW_POINTS. */
  async readRaw(q: ReadQuery): Promise<RawPoint[] | undefined> {
    const id = await this.findSeries(q);
    if (id === undefined) return [];
    const rows = await this.db
      .selectFrom('telemetry_point')
      .select(['ts', 'num', 'str', 'lat', 'lon'])
      .where('series_id', '=', id)
      .where('ts', '>=', q.from)
      .where('ts', '<', q.to)
      .orderBy('ts')
      .limit(MAX_RAW_POINTS + 1)
      .execute();
    if (rows.length > MAX_RAW_POINTS) return undefined;
    return rows.map((r) => {
      const ts = formatTsMicros(Number(r.ts));
      switch (q.type) {
        case 'geo_point':
          return { ts, location: { lat: r.lat!, lon: r.lon! } };
        case 'string':
          return { ts, value: r.str! };
        case 'bool':
          return { ts, value: r.num !== 0 };
        default:
          return { ts, value: r.num! };
      }
    });
  }

  /** One entry per bucket that has points, oldest first. */
  async readBuckets(q: ReadQuery, { aggregation, interval }: NonNullable<ReadQuery['bucket']>): Promise<Bucket[]> {
    const id = await this.findSeries(q);
    if (id === undefined) return [];
    const iv = sql`cast(${interval} as bigint)`;
    const plan = readPlan(q.from, q.to, interval);
    const parts: RawBuilder<unknown>[] = [];
    if (plan.minutes) {
      parts.push(sql`select minute / ${iv} as b, n, vsum, vmin, vmax, min_ts as t0, max_ts as t1 from telemetry_minute
        where series_id = ${id} and minute >= ${plan.minutes[0]} and minute < ${plan.minutes[1]}`);
    }
    for (const [from, to] of plan.points) {
      parts.push(sql`select ts / ${iv} as b, 1 as n, num as vsum, num as vmin, num as vmax, ts as t0, ts as t1 from telemetry_point
        where series_id = ${id} and ts >= ${from} and ts < ${to}`);
    }
    const { rows } = await sql<{ value: number | string; t0: number | string; t1: number | string }>`
      select ${AGGREGATE[aggregation]} as value, min(t0) as t0, max(t1) as t1
      from (${sql.join(parts, sql` union all `)}) as u group by b order by b`.execute(this.db);
    return rows.map((r) => ({ max_ts: Math.floor(Number(r.t1) / 1000), ts: formatTsMillis(Number(r.t0)), value: Number(r.value) }));
  }

  private async findSeries(q: ReadQuery): Promise<number | undefined> {
    const row = await this.db
      .selectFrom('telemetry_series')
      .select('id')
      .where('device_id', '=', q.deviceId)
      .where('field', '=', q.field)
      .where('type', '=', q.type)
      .executeTakeFirst();
    return row?.id;
  }

  /** The device's series of these points (`field \n type` → id), created where new. */
  private async seriesIds(deviceId: string, points: readonly Point[]): Promise<Map<string, number>> {
    const ids = new Map<string, number>();
    const missing = new Map<string, { field: string; type: string }>();
    for (const p of points) {
      const key = `${p.field}\n${p.type}`;
      if (ids.has(key) || missing.has(key)) continue;
      const id = this.series.get(`${deviceId}\n${key}`);
      if (id === undefined) missing.set(key, { field: p.field, type: p.type });
      else ids.set(key, id);
    }
    if (!missing.size) return ids;
    const wanted = [...missing.values()];
    for (const chunk of inChunks(wanted, 1000)) {
      await this.db
        .insertInto('telemetry_series')
        .values(chunk.map((s) => ({ device_id: deviceId, ...s })))
        .onConflict((oc) => oc.columns(['device_id', 'field', 'type']).doNothing())
        .execute();
    }
    if (this.series.size + wanted.length > MAX_CACHED_SERIES) this.series.clear();
    for (const chunk of inChunks(wanted, 1000)) {
      const found = await this.db
        .selectFrom('telemetry_series')
        .select(['id', 'field', 'type'])
        .where('device_id', '=', deviceId)
        .where(
          'field',
          'in',
          chunk.map((s) => s.field),
        )
        .execute();
      for (const s of found) {
        const key = `${s.field}\n${s.type}`;
        if (!missing.has(key)) continue;
        ids.set(key, s.id);
        this.series.set(`${deviceId}\n${key}`, s.id);
      }
    }
    return ids;
  }
}

/**
 * The rows (all with the same columns, at least one) as a SELECT for an INSERT: one parameter per
 * column on PostgreSQL (`unnest` of arrays), one in all on SQLite (`json_each`). A VALUES list of
 * thousands of rows costs several times more to build, send and parse, and SQLite takes at most
 * 32766 parameters a statement.
 */
function rowsSource<T extends object>(postgres: boolean, rows: readonly T[]): { columns: (keyof T & string)[]; select: RawBuilder<unknown> } {
  const columns = Object.keys(rows[0]!) as (keyof T & string)[];
  if (postgres) {
    const arrays = columns.map((c) => sql`${rows.map((r) => r[c])}::${sql.raw(COLUMN_TYPES[c]!)}[]`);
    return { columns, select: sql`select * from unnest(${sql.join(arrays)})` };
  }
  const json = JSON.stringify(rows.map((r) => columns.map((c) => r[c])));
  // (`where true`: SQLite's grammar needs a WHERE before an upsert's ON CONFLICT)
  return { columns, select: sql`select ${sql.join(columns.map((_, i) => sql`value ->> ${sql.lit(i)}`))} from json_each(${json}) where true` };
}
