// The telemetry logbook on each storage backend: devices upload batches of points over the device
// link (`POST /device/v1/telemetry`), users read them back with AutoPi's
// `GET /logbook/storage/read/`, raw or in buckets. Expected values are computed by hand.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Server } from '../../src/server/server.js';
import { backends } from './backends.js';
import { newDevice, user } from './helpers.js';

type Point = { field: string; type: string; value: unknown; ts?: string };

async function upload(server: Server, key: string, batch: string, points: Point[]) {
  const res = await server.app.inject({ method: 'POST', url: '/device/v1/telemetry', headers: { authorization: `Bearer ${key}` }, payload: { batch, points } });
  return { status: res.statusCode, body: JSON.parse(res.body) as Record<string, unknown> };
}

function reader(server: Server) {
  const call = user(server);
  return async (params: Record<string, string>) => call('GET', `/logbook/storage/read/?${new URLSearchParams(params)}`);
}

const voltage = (ts: string, value: number): Point => ({ field: 'obd.bat.voltage', type: 'float', value, ts });
const ms = (iso: string) => Date.parse(iso);

// Six readings in three 10-minute buckets (uploaded in two batches; the 10:03 minute spans both).
const BATCH_1 = [voltage('2020-07-09T10:03:37.566Z', 13.5), voltage('2020-07-09T10:05:00Z', 12), voltage('2020-07-09T10:13:45.378Z', 13.6)];
const BATCH_2 = [voltage('2020-07-09T10:03:41.415Z', 13.7), voltage('2020-07-09T10:19:59.999Z', 14), voltage('2020-07-09T10:20:00Z', 11)];
const HOUR = { from_utc: '2020-07-09T10:00:00.000Z', to_utc: '2020-07-09T11:00:00.000Z' };

for (const backend of backends()) {
  describe(`the telemetry logbook on ${backend.name}`, () => {
    test('raw points come back in time order with the reference shapes: value per type, geo_point as location, µs timestamps', async (t) => {
      const server = await backend.start(t);
      const dev = await newDevice(server);
      const read = reader(server);
      const up = await upload(server, dev.key, 'b1', [
        ...BATCH_2,
        ...BATCH_1,
        { field: 'track.pos.loc', type: 'geo_point', value: { lat: 57.04699, lon: 9.93909 }, ts: '2020-07-09T10:11:53.811839Z' },
        { field: 'track.pos.loc', type: 'geo_point', value: { lat: 57.04697, lon: 9.93808 }, ts: '2020-07-09T12:11:59.248421+02:00' },
        { field: 'rpm', type: 'int', value: 2100, ts: '2020-07-09T10:01:00Z' },
        { field: 'ignition', type: 'bool', value: true, ts: '2020-07-09T10:01:00Z' },
        { field: 'ignition', type: 'bool', value: false, ts: '2020-07-09T10:02:00Z' },
        { field: 'vin', type: 'string', value: 'WVWZZZ1JZXW000001', ts: '2020-07-09T10:01:00Z' },
      ]);
      assert.equal(up.status, 200, JSON.stringify(up.body));
      assert.deepEqual(up.body, { batch: 'b1', stored: 12, duplicate: false });

      const positions = await read({ device_id: dev.id, field: 'track.pos.loc', field_type: 'geo_point', ...HOUR });
      assert.equal(positions.status, 200, positions.text);
      assert.deepEqual(positions.body, [
        { ts: '2020-07-09T10:11:53.811839Z', location: { lat: 57.04699, lon: 9.93909 } },
        { ts: '2020-07-09T10:11:59.248421Z', location: { lat: 57.04697, lon: 9.93808 } },
      ]);
      // [from, to): the point at from_utc is in, the one at to_utc is not
      const raw = await read({
        device_id: dev.id,
        field: 'obd.bat.voltage',
        field_type: 'float',
        from_utc: '2020-07-09T10:03:41.415Z',
        to_utc: '2020-07-09T10:20:00Z',
      });
      assert.deepEqual(raw.body, [
        { ts: '2020-07-09T10:03:41.415000Z', value: 13.7 },
        { ts: '2020-07-09T10:05:00.000000Z', value: 12 },
        { ts: '2020-07-09T10:13:45.378000Z', value: 13.6 },
        { ts: '2020-07-09T10:19:59.999000Z', value: 14 },
      ]);
      assert.deepEqual((await read({ device_id: dev.id, field: 'rpm', field_type: 'int', ...HOUR })).body, [
        { ts: '2020-07-09T10:01:00.000000Z', value: 2100 },
      ]);
      assert.deepEqual((await read({ device_id: dev.id, field: 'ignition', field_type: 'bool', ...HOUR })).body, [
        { ts: '2020-07-09T10:01:00.000000Z', value: true },
        { ts: '2020-07-09T10:02:00.000000Z', value: false },
      ]);
      assert.deepEqual((await read({ device_id: dev.id, field: 'vin', field_type: 'string', ...HOUR })).body, [
        { ts: '2020-07-09T10:01:00.000000Z', value: 'WVWZZZ1JZXW000001' },
      ]);
      // a field of another type, an unknown field, another device: nothing
      assert.deepEqual((await read({ device_id: dev.id, field: 'rpm', field_type: 'float', ...HOUR })).body, []);
      assert.deepEqual((await read({ device_id: dev.id, field: 'no.such.field', field_type: 'float', ...HOUR })).body, []);
      const other = await newDevice(server);
      assert.deepEqual((await read({ device_id: other.id, field: 'obd.bat.voltage', field_type: 'float', ...HOUR })).body, []);
    });

    // for avg, min, max, sum and count
    test('aggregated: one {max_ts, ts, value} per bucket with points; partial minutes at the range ends count exactly', async (t) => {
      const server = await backend.start(t);
      const dev = await newDevice(server);
      const read = reader(server);
      assert.equal((await upload(server, dev.key, 'first', BATCH_1)).status, 200);
      assert.equal((await upload(server, dev.key, 'second', BATCH_2)).status, 200);
      const buckets = async (aggregation: string, interval: string, range = HOUR) => {
        const res = await read({ device_id: dev.id, field: 'obd.bat.voltage', field_type: 'float', aggregation, interval, ...range });
        assert.equal(res.status, 200, res.text);
        return res.body as unknown as { max_ts: number; ts: string; value: number }[];
      };
      // 10:00–10:10: 13.5, 13.7, 12 · 10:10–10:20: 13.6, 14 · 10:20–10:30: 11
      const first = { max_ts: ms('2020-07-09T10:05:00Z'), ts: '2020-07-09T10:03:37.566Z' };
      const second = { max_ts: ms('2020-07-09T10:19:59.999Z'), ts: '2020-07-09T10:13:45.378Z' };
      const third = { max_ts: ms('2020-07-09T10:20:00Z'), ts: '2020-07-09T10:20:00.000Z' };
      const avg = await buckets('avg', '10m');
      assert.deepEqual(
        avg.map(({ value: _, ...b }) => b),
        [first, second, third],
      );
      assertClose(
        avg.map((b) => b.value),
        [39.2 / 3, 13.8, 11],
      );
      assert.deepEqual(
        (await buckets('min', '10m')).map((b) => b.value),
        [12, 13.6, 11],
      );
      assert.deepEqual(
        (await buckets('MAX', '10m')).map((b) => b.value),
        [13.7, 14, 11],
      );
      assertClose(
        (await buckets('sum', '10m')).map((b) => b.value),
        [39.2, 27.6, 11],
      );
      assert.deepEqual(
        (await buckets('count', '10m')).map((b) => b.value),
        [3, 2, 1],
      );
      assertClose(
        (await buckets('avg', '1h')).map((b) => b.value),
        [77.8 / 6],
      );
      assert.deepEqual(
        (await buckets('count', '1d', { from_utc: '2020-07-01T00:00:00Z', to_utc: '2020-08-01T00:00:00Z' })).map((b) => b.value),
        [6],
      );

      // From 10:03:40 (inside the 10:03 minute: 13.5 is out, 13.7 in) to 10:19:59.500 (14 is out).
      const cut = { from_utc: '2020-07-09T10:03:40Z', to_utc: '2020-07-09T10:19:59.500Z' };
      const avgCut = await buckets('avg', '10m', cut);
      assertClose(
        avgCut.map((b) => b.value),
        [12.85, 13.6],
      );
      assert.deepEqual(
        avgCut.map((b) => [b.ts, b.max_ts]),
        [
          ['2020-07-09T10:03:41.415Z', ms('2020-07-09T10:05:00Z')],
          ['2020-07-09T10:13:45.378Z', ms('2020-07-09T10:13:45.378Z')],
        ],
      );
      assert.deepEqual(
        (await buckets('count', '10m', cut)).map((b) => b.value),
        [2, 1],
      );
      // Within one minute: from the points alone.
      assert.deepEqual(
        (await buckets('sum', '1m', { from_utc: '2020-07-09T10:03:00Z', to_utc: '2020-07-09T10:03:40Z' })).map((b) => b.value),
        [13.5],
      );

      // Sub-minute buckets: from the points.
      const halfMinutes = await buckets('avg', '30s');
      assertClose(
        halfMinutes.map((b) => b.value),
        [13.6, 12, 13.6, 14, 11],
      );
      assert.deepEqual(
        halfMinutes.map((b) => b.ts),
        ['2020-07-09T10:03:37.566Z', '2020-07-09T10:05:00.000Z', '2020-07-09T10:13:45.378Z', '2020-07-09T10:19:59.999Z', '2020-07-09T10:20:00.000Z'],
      );

      // Nothing in range: no buckets.
      assert.deepEqual(await buckets('avg', '10m', { from_utc: '2021-01-01T00:00:00Z', to_utc: '2021-01-02T00:00:00Z' }), []);
    });

    test('int and bool fields aggregate as numbers; geo_point and string fields can be counted', async (t) => {
      const server = await backend.start(t);
      const dev = await newDevice(server);
      const read = reader(server);
      const up = await upload(server, dev.key, 'mixed', [
        { field: 'rpm', type: 'int', value: 1000, ts: '2020-07-09T10:00:10Z' },
        { field: 'rpm', type: 'int', value: 3001, ts: '2020-07-09T10:00:20Z' },
        { field: 'ignition', type: 'bool', value: true, ts: '2020-07-09T10:00:10Z' },
        { field: 'ignition', type: 'bool', value: true, ts: '2020-07-09T10:00:20Z' },
        { field: 'ignition', type: 'bool', value: false, ts: '2020-07-09T10:00:30Z' },
        { field: 'ignition', type: 'bool', value: false, ts: '2020-07-09T10:00:40Z' },
        { field: 'track.pos.loc', type: 'geo_point', value: { lat: 1, lon: 2 }, ts: '2020-07-09T10:00:10Z' },
        { field: 'track.pos.loc', type: 'geo_point', value: { lat: 1, lon: 3 }, ts: '2020-07-09T10:30:10Z' },
        { field: 'vin', type: 'string', value: 'A', ts: '2020-07-09T10:00:10Z' },
      ]);
      assert.equal(up.status, 200, JSON.stringify(up.body));
      const value = async (field: string, field_type: string, aggregation: string, interval = '1h') =>
        ((await read({ device_id: dev.id, field, field_type, aggregation, interval, ...HOUR })).body as unknown as { value: number }[]).map((b) => b.value);
      assert.deepEqual(await value('rpm', 'int', 'avg'), [2000.5]);
      assert.deepEqual(await value('rpm', 'int', 'sum'), [4001]);
      assert.deepEqual(await value('ignition', 'bool', 'avg'), [0.5]);
      assert.deepEqual(await value('ignition', 'bool', 'max'), [1]);
      assert.deepEqual(await value('track.pos.loc', 'geo_point', 'count', '30m'), [1, 1]);
      assert.deepEqual(await value('vin', 'string', 'count'), [1]);
    });

    test('a batch sent again is acknowledged and not stored twice', async (t) => {
      const server = await backend.start(t);
      const dev = await newDevice(server);
      const read = reader(server);
      assert.deepEqual((await upload(server, dev.key, 'same-batch', BATCH_1)).body, { batch: 'same-batch', stored: 3, duplicate: false });
      assert.deepEqual((await upload(server, dev.key, 'same-batch', BATCH_1)).body, { batch: 'same-batch', stored: 0, duplicate: true });
      // the id is the device's own: another device may use it
      const other = await newDevice(server);
      assert.deepEqual((await upload(server, other.key, 'same-batch', BATCH_1)).body, { batch: 'same-batch', stored: 3, duplicate: false });
      const count = await read({ device_id: dev.id, field: 'obd.bat.voltage', field_type: 'float', aggregation: 'count', interval: '1h', ...HOUR });
      assert.deepEqual(
        (count.body as unknown as { value: number }[]).map((b) => b.value),
        [3],
      );
      assert.equal((await read({ device_id: dev.id, field: 'obd.bat.voltage', field_type: 'float', ...HOUR })).body.length, 3);
    });

    test("bad input: 400 naming the parameter or the point's field; an unknown device 404; keys and tokens required", async (t) => {
      const server = await backend.start(t);
      const dev = await newDevice(server);
      const read = reader(server);
      const base = { device_id: dev.id, field: 'obd.bat.voltage', field_type: 'float', ...HOUR };
      const refused = async (params: Record<string, string>, field: string, detail: RegExp) => {
        const res = await read(params);
        assert.equal(res.status, 400, res.text);
        assert.equal(res.body.field, field, res.text);
        assert.match(String(res.body.detail), detail);
      };
      await refused({ ...base, field_type: 'double' }, '/field_type', /float, int, bool, string, geo_point/);
      await refused({ ...base, from_utc: '2020-07-09T11:00:00Z', to_utc: '2020-07-09T10:00:00Z' }, '/to_utc', /before from_utc/);
      await refused({ ...base, from_utc: 'yesterday' }, '/from_utc', /date-time/);
      await refused({ ...base, aggregation: 'median', interval: '10m' }, '/aggregation', /.+/);
      await refused({ ...base, aggregation: 'avg', interval: '10 minutes' }, '/interval', /.+/);
      await refused({ ...base, aggregation: 'avg', interval: '0m' }, '/interval', /.+/);
      await refused({ ...base, aggregation: 'avg' }, '/interval', /needs an interval/);
      await refused({ ...base, interval: '10m' }, '/aggregation', /needs an aggregation/);
      await refused({ ...base, field_type: 'string', aggregation: 'avg', interval: '10m' }, '/aggregation', /only be counted/);
      await refused(
        { ...base, from_utc: '2000-01-01T00:00:00Z', to_utc: '2020-01-01T00:00:00Z', aggregation: 'avg', interval: '1s' },
        '/interval',
        /at most 100000/,
      );
      const { field_type: _, ...noType } = base;
      await refused(noType, '/field_type', /.+/);

      const unknown = await read({ ...base, device_id: 'no-such-device' });
      assert.equal(unknown.status, 404);
      assert.match(String(unknown.body.detail), /no device no-such-device/);
      assert.equal((await user(server)('GET', `/logbook/storage/read/?${new URLSearchParams(base)}`, undefined, '')).status, 401);

      const bad = async (points: Point[], field: string) => {
        const res = await upload(server, dev.key, 'bad', points);
        assert.equal(res.status, 400, JSON.stringify(res.body));
        assert.equal(res.body.field, field, JSON.stringify(res.body));
      };
      await bad([voltage('2020-07-09T10:00:00Z', 1), { field: 'x', type: 'float', value: 'high' }], '/points/1/value');
      await bad([{ field: 'x', type: 'int', value: 1.5 }], '/points/0/value');
      await bad([{ field: 'x', type: 'bool', value: 1 }], '/points/0/value');
      await bad([{ field: 'x', type: 'geo_point', value: { lat: 91, lon: 0 } }], '/points/0/value');
      await bad([{ field: 'x', type: 'float', value: 1, ts: '2020-07-09 10:00' }], '/points/0/ts');
      await bad([{ field: 'x', type: 'float', value: 1, ts: '2020-02-30T10:00:00Z' }], '/points/0/ts');
      await bad([{ field: 'x y', type: 'float', value: 1 }], '/points/0/field');
      await bad([{ field: 'x', type: 'double', value: 1 }], '/points/0/type');
      await bad([{ field: 'x', type: 'float', value: 1, unit: 'V' } as Point], '/points/0/unit');
      // nothing of a refused batch is stored, and its id is still free
      assert.deepEqual((await read({ ...base, from_utc: '2020-07-09T09:00:00Z' })).body, []);
      assert.equal((await upload(server, dev.key, 'bad', BATCH_1)).status, 200);

      const noKey = await server.app.inject({ method: 'POST', url: '/device/v1/telemetry', payload: { batch: 'x', points: BATCH_1 } });
      assert.equal(noKey.statusCode, 401);
    });

    test('retention: points (and whole minutes of aggregates) older than it are pruned, newer ones stay; batch ids are kept 30 days', async (t) => {
      const server = await backend.start(t, { telemetry: { retentionMs: 60 * 60_000 } });
      const dev = await newDevice(server);
      const read = reader(server);
      assert.equal((await upload(server, dev.key, 'b1', BATCH_1)).status, 200);
      assert.equal((await upload(server, dev.key, 'b2', BATCH_2)).status, 200);
      // an hour's retention, pruned at 11:13:45.378 (cut-off 10:13:45.378): the points before it go
      const pruned = await server.logbook.prune(ms('2020-07-09T11:13:45.378Z'));
      assert.deepEqual(pruned, { points: 3, batches: 0 });
      const raw = await read({ device_id: dev.id, field: 'obd.bat.voltage', field_type: 'float', ...HOUR });
      assert.deepEqual(raw.body, [
        { ts: '2020-07-09T10:13:45.378000Z', value: 13.6 },
        { ts: '2020-07-09T10:19:59.999000Z', value: 14 },
        { ts: '2020-07-09T10:20:00.000000Z', value: 11 },
      ]);
      // the aggregates say the same (minutes wholly before the cut-off went with their points)
      const buckets = await read({ device_id: dev.id, field: 'obd.bat.voltage', field_type: 'float', ...HOUR, aggregation: 'count', interval: '1h' });
      assert.deepEqual(
        buckets.body.map((b) => b.value),
        [3],
      );
      // batch ids stay for 30 days (a batch sent again is still recognised), then go
      assert.equal((await upload(server, dev.key, 'b1', BATCH_1)).body.duplicate, true);
      assert.deepEqual(await server.logbook.prune(Date.now() + 31 * 24 * 60 * 60_000), { points: 3, batches: 2 });
    });

    test('deleting a device deletes its telemetry', async (t) => {
      const server = await backend.start(t);
      const dev = await newDevice(server);
      assert.equal((await upload(server, dev.key, 'b', BATCH_1)).status, 200);
      assert.equal((await user(server)('DELETE', `/dongle/devices/${dev.id}/`)).status, 204);
      for (const table of ['telemetry_series', 'telemetry_point', 'telemetry_minute', 'telemetry_batch'] as const) {
        const rows = await server.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .executeTakeFirstOrThrow();
        assert.equal(Number(rows.n), 0, table);
      }
    });
  });
}

function assertClose(actual: number[], expected: number[]): void {
  assert.equal(actual.length, expected.length, `${JSON.stringify(actual)} vs ${JSON.stringify(expected)}`);
  for (const [i, a] of actual.entries()) assert.ok(Math.abs(a - expected[i]!) < 1e-9, `${JSON.stringify(actual)} vs ${JSON.stringify(expected)}`);
}
