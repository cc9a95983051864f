// GET /logbook/storage/fields/: the fields a device has points of (what the dashboard offers to plot),
// on each storage backend: each field and type once, with its newest point's time; another device's
// fields are not listed; an unknown device is 404, no token 401.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backends } from './backends.js';
import { newDevice, user } from './helpers.js';

for (const backend of backends()) {
  describe(`telemetry fields on ${backend.name}`, () => {
    test("a device's fields with their type and newest point; only its own", async (t) => {
      const server = await backend.start(t);
      const call = user(server);
      const [dev, other] = [await newDevice(server), await newDevice(server)];
      const upload = async (key: string, batch: string, points: unknown[]) =>
        (await server.app.inject({ method: 'POST', url: '/device/v1/telemetry', headers: { authorization: `Bearer ${key}` }, payload: { batch, points } }))
          .statusCode;
      assert.equal((await call('GET', `/logbook/storage/fields/?device_id=${dev.id}`)).body.length, 0, 'none yet');
      assert.equal(
        await upload(dev.key, 'b1', [
          { field: 'obd.bat.voltage', type: 'float', value: 12.5, ts: '2021-03-01T10:00:10Z' },
          { field: 'obd.bat.voltage', type: 'float', value: 13, ts: '2021-03-01T10:05:00.123456Z' },
          { field: 'track.pos.loc', type: 'geo_point', value: { lat: 57.04699, lon: 9.93909 }, ts: '2021-03-01T10:00:30Z' },
          { field: 'app.mode', type: 'string', value: 'idle', ts: '2021-03-01T09:00:00Z' },
        ]),
        200,
      );
      assert.equal(await upload(other.key, 'b1', [{ field: 'other.only', type: 'int', value: 1, ts: '2021-03-01T10:00:00Z' }]), 200);
      const res = await call('GET', `/logbook/storage/fields/?device_id=${dev.id}`);
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, [
        { field: 'app.mode', type: 'string', last_ts: '2021-03-01T09:00:00.000000Z' },
        { field: 'obd.bat.voltage', type: 'float', last_ts: '2021-03-01T10:05:00.123456Z' },
        { field: 'track.pos.loc', type: 'geo_point', last_ts: '2021-03-01T10:00:30.000000Z' },
      ]);
      assert.equal((await call('GET', '/logbook/storage/fields/?device_id=nope')).status, 404);
      assert.equal((await call('GET', '/logbook/storage/fields/')).status, 400);
      assert.equal((await call('GET', `/logbook/storage/fields/?device_id=${dev.id}`, undefined, '')).status, 401);
    });
  });
}
