// Telemetry points and the logbook's arithmetic: timestamps, each type's values, the read
// parameters, and buckets from per-minute aggregates plus the partial minutes at the range ends.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ValidationError } from '../../src/shared/errors.js';
import { formatTsMicros, formatTsMillis, parsePoint, parsePoints, parseTs } from '../../src/shared/telemetry.js';
import { intervalUs, minuteRows, MINUTE_US, readPlan } from '../../src/server/logbook/buckets.js';
import { readQuery, type ReadParams } from '../../src/server/logbook/readQuery.js';

const refusedAt = (field: string, fn: () => unknown, message?: RegExp) =>
  assert.throws(fn, (err: unknown) => err instanceof ValidationError && err.field === field && (!message || message.test(err.message)));

test('timestamps: RFC 3339 with a zone, to µs since the epoch; back with six or three fractional digits', () => {
  assert.equal(parseTs('1970-01-01T00:00:00Z', '/ts'), 0);
  assert.equal(parseTs('2020-07-09T10:11:53.811839Z', '/ts'), Date.UTC(2020, 6, 9, 10, 11, 53, 811) * 1000 + 839);
  assert.equal(parseTs('2020-07-09T12:11:53.8+02:00', '/ts'), Date.UTC(2020, 6, 9, 10, 11, 53, 800) * 1000);
  assert.equal(parseTs('2020-07-09 05:41:53-0430', '/ts'), Date.UTC(2020, 6, 9, 10, 11, 53) * 1000);
  // beyond µs: cut, not rounded
  assert.equal(parseTs('2020-07-09T10:11:53.123456789z', '/ts'), Date.UTC(2020, 6, 9, 10, 11, 53, 123) * 1000 + 456);
  assert.equal(parseTs('2024-02-29T00:00:00Z', '/ts'), Date.UTC(2024, 1, 29) * 1000);
  for (const bad of [
    '2020-07-09T10:11:53',
    '2020-07-09',
    'yesterday',
    '2020-7-9T10:11:53Z',
    '2023-02-29T00:00:00Z',
    '2020-07-09T24:00:00Z',
    '2020-13-01T00:00:00Z',
    '1969-12-31T23:59:59Z',
    '2200-01-01T00:00:00Z',
  ]) {
    refusedAt('/points/0/ts', () => parseTs(bad, '/points/0/ts'));
  }
  assert.equal(formatTsMicros(Date.UTC(2020, 6, 9, 10, 11, 53, 811) * 1000 + 839), '2020-07-09T10:11:53.811839Z');
  assert.equal(formatTsMicros(Date.UTC(2020, 6, 9) * 1000 + 5), '2020-07-09T00:00:00.000005Z');
  assert.equal(formatTsMillis(Date.UTC(2020, 6, 9, 10, 3, 37, 566) * 1000 + 999), '2020-07-09T10:03:37.566Z');
});

test("points: each type's value is checked, the error names the point's field; ts defaults to now", () => {
  const now = 1_600_000_000_000_000;
  assert.deepEqual(parsePoint({ field: 'obd.bat.voltage', type: 'float', value: 13.5 }, '', now), {
    field: 'obd.bat.voltage',
    type: 'float',
    value: 13.5,
    ts: now,
  });
  assert.deepEqual(
    parsePoints(
      [
        { field: 'rpm', type: 'int', value: -3, ts: '1970-01-01T00:00:01Z' },
        { field: 'on', type: 'bool', value: false },
        { field: 'vin', type: 'string', value: '' },
        { field: 'track.pos.loc', type: 'geo_point', value: { lon: 9.9, lat: 57 } },
      ],
      '/points',
      now,
    ).map((p) => [p.value, p.ts]),
    [
      [-3, 1_000_000],
      [false, now],
      ['', now],
      [{ lat: 57, lon: 9.9 }, now],
    ],
  );
  const refused = (type: string, value: unknown) =>
    refusedAt('/points/1/value', () =>
      parsePoints(
        [
          { field: 'x', type: 'float', value: 1 },
          { field: 'x', type: type as 'float', value },
        ],
        '/points',
        now,
      ),
    );
  for (const v of ['1', null, Infinity, NaN, true]) refused('float', v);
  for (const v of [1.5, '2', 2 ** 53]) refused('int', v);
  for (const v of [0, 'true', null]) refused('bool', v);
  for (const v of [1, null, 'x'.repeat(4097), 'a\0b']) refused('string', v);
  for (const v of [[57, 9], { lat: 57 }, { lat: 91, lon: 0 }, { lat: 0, lon: -181 }, { lat: '57', lon: 9 }, { lat: 1, lon: 2, alt: 3 }, null])
    refused('geo_point', v);
  refusedAt('/ts', () => parsePoint({ field: 'x', type: 'float', value: 1, ts: 'now' }, '', now), /RFC 3339/);
});

test('intervals and read plans: whole minutes from the per-minute aggregates, the partial ones at the ends from the points', () => {
  assert.equal(intervalUs('30s'), 30_000_000);
  assert.equal(intervalUs('10m'), 600_000_000);
  assert.equal(intervalUs('1h'), 3_600_000_000);
  assert.equal(intervalUs('7d'), 7 * 86_400_000_000);
  const m = MINUTE_US;
  // on minutes: no points needed
  assert.deepEqual(readPlan(10 * m, 70 * m, 10 * m), { minutes: [10 * m, 70 * m], points: [] });
  // a start and an end inside minutes
  assert.deepEqual(readPlan(10 * m + 5, 70 * m + 7, 60 * m), {
    minutes: [11 * m, 70 * m],
    points: [
      [10 * m + 5, 11 * m],
      [70 * m, 70 * m + 7],
    ],
  });
  // within one minute, or sub-minute buckets: points only
  assert.deepEqual(readPlan(10 * m + 5, 10 * m + 50, m), { minutes: undefined, points: [[10 * m + 5, 10 * m + 50]] });
  assert.deepEqual(readPlan(10 * m + 5, 11 * m + 50, m), { minutes: undefined, points: [[10 * m + 5, 11 * m + 50]] });
  assert.deepEqual(readPlan(0, 60 * m, 30_000_000), { minutes: undefined, points: [[0, 60 * m]] });
});

test('per-minute aggregates of a batch: count, sum, min, max and first/last time per series and minute, in key order', () => {
  const m = MINUTE_US;
  const rows = minuteRows([
    { series_id: 2, ts: 5 * m + 1, num: 3 },
    { series_id: 1, ts: 5 * m + 30, num: 10 },
    { series_id: 1, ts: 5 * m + 10, num: -2 },
    { series_id: 1, ts: 6 * m, num: 4 },
    { series_id: 1, ts: 5 * m + 20, num: 1 },
    { series_id: 3, ts: 5 * m + 2 },
    { series_id: 3, ts: 5 * m + 1 },
  ]);
  assert.deepEqual(rows, [
    { series_id: 1, minute: 5 * m, n: 3, vsum: 9, vmin: -2, vmax: 10, min_ts: 5 * m + 10, max_ts: 5 * m + 30 },
    { series_id: 1, minute: 6 * m, n: 1, vsum: 4, vmin: 4, vmax: 4, min_ts: 6 * m, max_ts: 6 * m },
    { series_id: 2, minute: 5 * m, n: 1, vsum: 3, vmin: 3, vmax: 3, min_ts: 5 * m + 1, max_ts: 5 * m + 1 },
    { series_id: 3, minute: 5 * m, n: 2, vsum: null, vmin: null, vmax: null, min_ts: 5 * m + 1, max_ts: 5 * m + 2 },
  ]);
});

test('read parameters: the range in µs; aggregation and interval together, in either case; 400s name the parameter', () => {
  const base: ReadParams = {
    device_id: 'd',
    field: 'obd.bat.voltage',
    field_type: 'float',
    from_utc: '2020-01-01T00:00:00.000Z',
    to_utc: '2020-01-01T10:00:00.000Z',
  };
  const from = Date.UTC(2020, 0, 1) * 1000;
  assert.deepEqual(readQuery(base), { deviceId: 'd', field: 'obd.bat.voltage', type: 'float', from, to: from + 10 * 3_600_000_000 });
  assert.deepEqual(readQuery({ ...base, aggregation: 'AVG', interval: '1h' }).bucket, { aggregation: 'avg', interval: 3_600_000_000 });
  assert.deepEqual(readQuery({ ...base, field_type: 'geo_point', aggregation: 'count', interval: '1h' }).bucket, {
    aggregation: 'count',
    interval: 3_600_000_000,
  });
  assert.equal(readQuery({ ...base, to_utc: base.from_utc }).to, from);
  refusedAt('/to_utc', () => readQuery({ ...base, from_utc: base.to_utc, to_utc: base.from_utc }), /before from_utc/);
  refusedAt('/interval', () => readQuery({ ...base, aggregation: 'avg' }));
  refusedAt('/aggregation', () => readQuery({ ...base, interval: '1h' }));
  refusedAt('/aggregation', () => readQuery({ ...base, field_type: 'string', aggregation: 'max', interval: '1h' }));
  refusedAt('/interval', () => readQuery({ ...base, to_utc: '2030-01-01T00:00:00Z', aggregation: 'avg', interval: '1m' }), /at most 100000/);
  refusedAt('/from_utc', () => readQuery({ ...base, from_utc: '1960-01-01T00:00:00Z' }));
});
