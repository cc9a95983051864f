// The logbook's time arithmetic, all in microseconds since the epoch (UTC). Buckets are aligned on
// multiples of the interval since the epoch (1h buckets start on the hour, 1d ones at midnight
// UTC). Each series keeps per-minute aggregates of its points: a read whose interval is whole
// minutes takes the minutes that lie entirely inside its range from them, and only the partial
// minutes at either end from the points themselves.

export const MINUTE_US = 60_000_000;

const UNIT_US = { s: 1_000_000, m: MINUTE_US, h: 60 * MINUTE_US, d: 24 * 60 * MINUTE_US } as const;
export const INTERVAL_PATTERN = '^[1-9][0-9]{0,5}[smhd]$';

/** `10m` → 600_000_000 (the route's schema has checked INTERVAL_PATTERN). */
export function intervalUs(text: string): number {
  return Number(text.slice(0, -1)) * UNIT_US[text.slice(-1) as keyof typeof UNIT_US];
}

/** A half-open time range [from, to). */
export type Range = readonly [from: number, to: number];

/** Where a bucketed read of [from, to) finds its data: whole minutes from the aggregates, the rest from the points. */
export interface ReadPlan {
  minutes: Range | undefined;
  points: Range[];
}

export function readPlan(from: number, to: number, interval: number): ReadPlan {
  if (interval % MINUTE_US !== 0) return { minutes: undefined, points: [[from, to]] };
  const first = Math.ceil(from / MINUTE_US) * MINUTE_US;
  const last = Math.floor(to / MINUTE_US) * MINUTE_US;
  if (first >= last) return { minutes: undefined, points: [[from, to]] };
  const points: Range[] = [];
  if (from < first) points.push([from, first]);
  if (last < to) points.push([last, to]);
  return { minutes: [first, last], points };
}

export interface MinuteRow {
  series_id: number;
  minute: number;
  n: number;
  vsum: number | null;
  vmin: number | null;
  vmax: number | null;
  min_ts: number;
  max_ts: number;
}

/**
 * The per-minute aggregates of a batch of points (without `num`: not a numeric series), one row
 * per series and minute, in key order (upserts in one order on every node cannot deadlock).
 */
export function minuteRows(points: readonly { series_id: number; ts: number; num?: number }[]): MinuteRow[] {
  const rows = new Map<string, MinuteRow>();
  for (const p of points) {
    const minute = Math.floor(p.ts / MINUTE_US) * MINUTE_US;
    const key = `${p.series_id}:${minute}`;
    const num = p.num ?? null;
    const r = rows.get(key);
    if (!r) {
      rows.set(key, { series_id: p.series_id, minute, n: 1, vsum: num, vmin: num, vmax: num, min_ts: p.ts, max_ts: p.ts });
      continue;
    }
    r.n++;
    if (num !== null) {
      r.vsum! += num;
      if (num < r.vmin!) r.vmin = num;
      if (num > r.vmax!) r.vmax = num;
    }
    if (p.ts < r.min_ts) r.min_ts = p.ts;
    if (p.ts > r.max_ts) r.max_ts = p.ts;
  }
  return [...rows.values()].sort((a, b) => a.series_id - b.series_id || a.minute - b.minute);
}
