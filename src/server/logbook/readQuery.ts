// `GET /logbook/storage/read/` parameters, as AutoPi names them, checked and turned into a query.
import { Type, type Static } from '@sinclair/typebox';
import { ValidationError } from '../../shared/errors.js';
import { FIELD_PATTERN, FieldTypeSchema, parseTs, type FieldType } from '../../shared/telemetry.js';
import { INTERVAL_PATTERN, intervalUs } from './buckets.js';

export const AGGREGATIONS = ['avg', 'min', 'max', 'sum', 'count'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

/** A read that would answer with more buckets than this is refused. */
export const MAX_BUCKETS = 100_000;

export const ReadParams = Type.Object({
  device_id: Type.String({ minLength: 1, maxLength: 100, description: "the server's device id" }),
  field: Type.String({ pattern: FIELD_PATTERN, description: 'e.g. obd.bat.voltage' }),
  field_type: FieldTypeSchema,
  from_utc: Type.String({ format: 'date-time', description: 'start of the range (included), e.g. 2020-01-01T00:00:00.000Z' }),
  to_utc: Type.String({ format: 'date-time', description: 'end of the range (excluded)' }),
  aggregation: Type.Optional(
    Type.String({
      pattern: `^(${[...AGGREGATIONS, ...AGGREGATIONS.map((a) => a.toUpperCase())].join('|')})$`,
      description: 'avg, min, max, sum or count (needs interval)',
    }),
  ),
  interval: Type.Optional(Type.String({ pattern: INTERVAL_PATTERN, description: 'bucket width, e.g. 30s, 10m, 1h, 1d (needs aggregation)' })),
});
export type ReadParams = Static<typeof ReadParams>;

export interface ReadQuery {
  deviceId: string;
  field: string;
  type: FieldType;
  /** [from, to) in µs */
  from: number;
  to: number;
  bucket?: { aggregation: Aggregation; interval: number };
}

const NUMERIC: readonly FieldType[] = ['float', 'int', 'bool'];

export function readQuery(p: ReadParams): ReadQuery {
  const from = parseTs(p.from_utc, '/from_utc');
  const to = parseTs(p.to_utc, '/to_utc');
  if (to < from) throw new ValidationError('/to_utc', `${p.to_utc} is before from_utc ${p.from_utc}`, 'query');
  const q: ReadQuery = { deviceId: p.device_id, field: p.field, type: p.field_type, from, to };
  if (p.aggregation === undefined && p.interval === undefined) return q;
  if (p.aggregation === undefined) throw new ValidationError('/aggregation', 'an interval needs an aggregation (avg, min, max, sum or count)', 'query');
  if (p.interval === undefined) throw new ValidationError('/interval', `aggregation ${p.aggregation} needs an interval, e.g. 10m`, 'query');
  const aggregation = p.aggregation.toLowerCase() as Aggregation;
  if (aggregation !== 'count' && !NUMERIC.includes(p.field_type)) {
    throw new ValidationError('/aggregation', `${p.field_type} fields can only be counted (aggregation=count)`, 'query');
  }
  const interval = intervalUs(p.interval);
  const buckets = Math.ceil(to / interval) - Math.floor(from / interval);
  if (buckets > MAX_BUCKETS)
    throw new ValidationError('/interval', `${p.interval} buckets from ${p.from_utc} to ${p.to_utc} would be ${buckets}; at most ${MAX_BUCKETS}`, 'query');
  return { ...q, bucket: { aggregation, interval } };
}
