// Telemetry data points, as apps post them to the agent and the agent uploads them to the server:
// `{field, type, value, ts?}`. One schema and one checker for both sides, so a point the agent
// accepted is never refused by the server.
import { Type, type Static } from '@sinclair/typebox';
import { ValidationError } from './errors.js';
import { isoTime } from './isoTime.js';

export const FIELD_TYPES = ['float', 'int', 'bool', 'string', 'geo_point'] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

export const FIELD_PATTERN = '^[A-Za-z0-9_.:/-]{1,200}$';
export const MAX_STRING_VALUE = 4096;
/** points per request, on the device API and on the upload */
export const MAX_POINTS_PER_REQUEST = 10_000;

export const FieldTypeSchema = Type.Union(
  FIELD_TYPES.map((t) => Type.Literal(t)),
  { description: FIELD_TYPES.join(', ') },
);

/** The shape; `value` is checked against `type` by parsePoints (a union of five shapes names the wrong field poorly). */
export const PointSchema = Type.Object(
  {
    field: Type.String({ pattern: FIELD_PATTERN, description: 'e.g. "obd.bat.voltage"' }),
    type: FieldTypeSchema,
    value: Type.Unknown({ description: 'a number (float), an integer (int), true/false (bool), a string, or {"lat", "lon"} (geo_point)' }),
    ts: Type.Optional(Type.String({ description: 'RFC 3339, e.g. "2020-07-09T10:11:53.811839Z"; default: when the agent received it' })),
  },
  { additionalProperties: false },
);
export type PointInput = Static<typeof PointSchema>;

export interface GeoPoint {
  lat: number;
  lon: number;
}
export type PointValue = number | boolean | string | GeoPoint;

/** A checked point; `ts` in microseconds since the epoch (UTC). */
export interface Point {
  field: string;
  type: FieldType;
  value: PointValue;
  ts: number;
}

/** Timestamps are kept in microseconds (the logbook answers with six fractional digits); below 2200 they stay exact in a double. */
const MAX_TS_US = Date.UTC(2200, 0, 1) * 1000;
const RFC3339 = /^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):?(\d\d))$/;

/** An RFC 3339 timestamp in microseconds since the epoch; ValidationError naming `field` otherwise. */
export function parseTs(text: string, field: string): number {
  const m = RFC3339.exec(text);
  if (!m) throw badTs(text, field, 'expected an RFC 3339 timestamp with a time zone, e.g. 2020-07-09T10:11:53.811Z');
  const [year, month, day, hour, min, sec] = [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])];
  const ms = Date.UTC(year, month - 1, day, hour, min, sec);
  if (month < 1 || month > 12 || new Date(ms).getUTCDate() !== day || hour > 23 || min > 59 || sec > 59) throw badTs(text, field, 'no such date or time');
  const offsetMin = m[8] ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]));
  const micros = m[7] ? Number(m[7].padEnd(6, '0').slice(0, 6)) : 0;
  const us = (ms - offsetMin * 60_000) * 1000 + micros;
  if (us < 0 || us >= MAX_TS_US) throw badTs(text, field, 'outside 1970–2199');
  return us;
}

// (errors are made by functions of their own: a closure made per point costs in a 10k-point batch)
const badTs = (text: string, field: string, why: string) => new ValidationError(field, `${JSON.stringify(text)}: ${why}`);

/** `2020-07-09T10:11:53.811839Z`: six fractional digits, as the logbook shows raw points. */
export function formatTsMicros(us: number): string {
  const ms = Math.floor(us / 1000);
  return `${isoTime(ms).slice(0, -1)}${String(us - ms * 1000).padStart(3, '0')}Z`;
}

/** `2020-07-09T10:03:37.566Z`: milliseconds, as the logbook shows buckets. */
export const formatTsMillis = (us: number): string => isoTime(Math.floor(us / 1000));

/**
 * A point whose shape PointSchema already checked: its value against its type, its ts parsed
 * (`now` when absent). The error names the point's field under `path`, e.g. `/points/3/value`.
 */
export function parsePoint(p: PointInput, path: string, now: number): Point {
  return { field: p.field, type: p.type, value: checkValue(p.type, p.value, `${path}/value`), ts: p.ts === undefined ? now : parseTs(p.ts, `${path}/ts`) };
}

export const parsePoints = (input: readonly PointInput[], path: string, now: number): Point[] => input.map((p, i) => parsePoint(p, `${path}/${i}`, now));

function checkValue(type: FieldType, value: unknown, field: string): PointValue {
  switch (type) {
    case 'float':
      if (typeof value !== 'number' || !Number.isFinite(value)) throw badValue(type, value, field, 'a number');
      return value;
    case 'int':
      if (!Number.isSafeInteger(value)) throw badValue(type, value, field, 'an integer');
      return value as number;
    case 'bool':
      if (typeof value !== 'boolean') throw badValue(type, value, field, 'true or false');
      return value;
    case 'string':
      // (PostgreSQL text cannot hold a NUL character)
      if (typeof value !== 'string' || value.length > MAX_STRING_VALUE || value.includes('\0'))
        throw badValue(type, value, field, `a string of at most ${MAX_STRING_VALUE} characters, without NUL`);
      return value;
    case 'geo_point': {
      const g = value as Partial<GeoPoint> | null;
      const ok =
        typeof g === 'object' &&
        g !== null &&
        !Array.isArray(g) &&
        Object.keys(g).length === 2 &&
        typeof g.lat === 'number' &&
        g.lat >= -90 &&
        g.lat <= 90 &&
        typeof g.lon === 'number' &&
        g.lon >= -180 &&
        g.lon <= 180;
      if (!ok) throw badValue(type, value, field, '{"lat": -90…90, "lon": -180…180}');
      return { lat: g.lat!, lon: g.lon! };
    }
  }
}

const badValue = (type: FieldType, value: unknown, field: string, expected: string) =>
  new ValidationError(field, `expected ${expected} for a ${type} field, got ${JSON.stringify(value)?.slice(0, 100)}`);

/** How a point travels (agent buffer, upload): its ts as text, with microseconds. */
export const pointJson = (p: Point): PointInput => ({ field: p.field, type: p.type, value: p.value, ts: formatTsMicros(p.ts) });
