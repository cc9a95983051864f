// Telemetry end to end on real parts: an app's container posts data points to the agent's device
// API with its own env (busybox wget), the agent buffers them on disk and uploads them over the
// device link, and they come back from the control plane's logbook, raw and aggregated — also the
// points posted while the server was down and across an agent restart — together with the
// device's own metrics. Expected values are computed by hand.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { controlPlane, imageName, provisionedDevice, tag } from './controlPlane.js';
import { containersOf, docker, execIn, startAgent, waitFor } from './harness.js';

type Row = { ts: string; value: number; max_ts?: number; location?: { lat: number; lon: number } };

const voltage = (ts: string, value: number) => ({ field: 'obd.bat.voltage', type: 'float', value, ts });

test('telemetry posted inside a container comes back from the logbook, raw and aggregated, including what was posted while the server was down', async (t) => {
  const cp = await controlPlane(t);
  const { call } = cp;
  const {
    agent,
    logs,
    appId,
    dataDir,
    deviceId: registered,
  } = await provisionedDevice(t, cp, 'telemetry', { appUpdatePollInterval: 5000, metricsInterval: 1000 });
  const deviceId = await registered();
  const release = await call('POST', `/docker/projects/${appId}/releases/`, {
    version: '1.0.0',
    containers: [{ name: 'sensor', image: imageName, tag, required_tags: [], startup_parameters: {}, purge_data: false }],
  });
  assert.equal(release.status, 201, JSON.stringify(release.body));
  const sensor = await waitFor(
    'the sensor running',
    async () => (await containersOf(appId)).find((c) => c.service === 'sensor' && c.state === 'running'),
    90_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${logs.slice(-30).join('\n')}`);
  });

  // what the app does: POST its points to the agent with the address and key it was given
  const post = async (body: unknown) => {
    const r = await execIn(sensor.id, [
      'sh',
      '-c',
      `wget -qO- --header 'Content-Type: application/json' --post-data '${JSON.stringify(body)}' ` +
        '"$BALENA_SUPERVISOR_ADDRESS/v2/telemetry?apikey=$BALENA_SUPERVISOR_API_KEY"',
    ]);
    assert.equal(r.exitCode, 0, r.output);
    return JSON.parse(r.output) as { status: string; accepted: number };
  };
  const read = async (params: Record<string, string>) => {
    const res = await call('GET', `/logbook/storage/read/?${new URLSearchParams({ device_id: deviceId, ...params })}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body as Row[];
  };
  const hour = { from_utc: '2021-03-01T10:00:00Z', to_utc: '2021-03-01T11:00:00Z' };
  const volts = (more: Record<string, string> = {}) => read({ field: 'obd.bat.voltage', field_type: 'float', ...hour, ...more });

  // Online: a batch, and one point without ts (the agent stamps it).
  assert.deepEqual(
    await post([
      voltage('2021-03-01T10:00:10Z', 12.5),
      voltage('2021-03-01T10:00:20.250Z', 13),
      voltage('2021-03-01T10:10:05Z', 14),
      {
        field: 'track.pos.loc',
        type: 'geo_point',
        value: { lat: 57.04699, lon: 9.93909 },
        ts: '2021-03-01T10:00:30.123456Z',
      },
    ]),
    { status: 'success', accepted: 4 },
  );
  const before = Date.now();
  assert.deepEqual(await post({ field: 'app.counter', type: 'int', value: 7 }), { status: 'success', accepted: 1 });
  await waitFor('the first points in the logbook', async () => (await volts()).length === 3, 30_000);
  assert.deepEqual(await read({ field: 'track.pos.loc', field_type: 'geo_point', ...hour }), [
    { ts: '2021-03-01T10:00:30.123456Z', location: { lat: 57.04699, lon: 9.93909 } },
  ]);
  const counter = await waitFor(
    'the stamped point',
    async () => {
      const rows = await read({
        field: 'app.counter',
        field_type: 'int',
        from_utc: new Date(before - 60_000).toISOString(),
        to_utc: new Date(Date.now() + 60_000).toISOString(),
      });
      return rows.length ? rows : undefined;
    },
    30_000,
  );
  assert.equal(counter.length, 1);
  assert.equal(counter[0]!.value, 7);
  assert.ok(Math.abs(Date.parse(counter[0]!.ts) - before) < 30_000, counter[0]!.ts);

  // A point that does not match its type is refused, naming it (an app's own key, from outside).
  const env = Object.fromEntries(
    ((await docker.getContainer(sensor.id).inspect()).Config.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]),
  );
  const refused = await fetch(`http://127.0.0.1:${agent.apiPort()}/v2/telemetry?apikey=${env.BALENA_SUPERVISOR_API_KEY}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify([voltage('2021-03-01T10:30:00Z', 1), { field: 'obd.bat.voltage', type: 'float', value: 'high' }]),
  });
  assert.equal(refused.status, 400);
  assert.match(((await refused.json()) as { message: string }).message, /\/1\/value/);

  // Offline: the server is down; the app keeps posting, the agent keeps the points (also across its own restart).
  await cp.stop();
  assert.equal((await post([voltage('2021-03-01T10:20:00Z', 11), voltage('2021-03-01T10:20:30Z', 12)])).accepted, 2);
  await waitFor('an upload to fail', async () => logs.some((l) => /Telemetry not uploaded/.test(l)), 30_000);
  await agent.stop();
  const again = await startAgent(t, [], { dataDir });
  assert.equal((await post(voltage('2021-03-01T10:25:00Z', 13))).accepted, 1);
  await cp.restart();

  // Everything arrives once, in time order.
  const raw = await waitFor(
    'the offline points in the logbook',
    async () => {
      const rows = await volts();
      return rows.length >= 6 && rows;
    },
    90_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${again.logs.slice(-20).join('\n')}`);
  });
  assert.deepEqual(raw, [
    { ts: '2021-03-01T10:00:10.000000Z', value: 12.5 },
    { ts: '2021-03-01T10:00:20.250000Z', value: 13 },
    { ts: '2021-03-01T10:10:05.000000Z', value: 14 },
    { ts: '2021-03-01T10:20:00.000000Z', value: 11 },
    { ts: '2021-03-01T10:20:30.000000Z', value: 12 },
    { ts: '2021-03-01T10:25:00.000000Z', value: 13 },
  ]);
  // 10:00–10:10: 12.5, 13 · 10:10–10:20: 14 · 10:20–10:30: 11, 12, 13
  assert.deepEqual(await volts({ aggregation: 'avg', interval: '10m' }), [
    { max_ts: Date.parse('2021-03-01T10:00:20.250Z'), ts: '2021-03-01T10:00:10.000Z', value: 12.75 },
    { max_ts: Date.parse('2021-03-01T10:10:05Z'), ts: '2021-03-01T10:10:05.000Z', value: 14 },
    { max_ts: Date.parse('2021-03-01T10:25:00Z'), ts: '2021-03-01T10:20:00.000Z', value: 12 },
  ]);
  assert.deepEqual(
    (await volts({ aggregation: 'max', interval: '10m' })).map((b) => b.value),
    [13, 14, 13],
  );
  assert.deepEqual(
    (await volts({ aggregation: 'count', interval: '10m' })).map((b) => b.value),
    [2, 1, 3],
  );
  assert.deepEqual(
    (await volts({ aggregation: 'sum', interval: '1h' })).map((b) => b.value),
    [75.5],
  );

  // The device's own metrics, every second.
  const window = { from_utc: new Date(before - 60_000).toISOString(), to_utc: new Date(Date.now() + 60_000).toISOString() };
  for (const field of ['device.cpu.usage', 'device.memory.usage', 'device.disk.usage']) {
    const rows = await waitFor(
      `${field} in the logbook`,
      async () => {
        const r = await read({ field, field_type: 'float', ...window });
        return r.length >= 2 && r;
      },
      30_000,
    );
    assert.ok(
      rows.every((r) => r.value >= 0 && r.value <= 100),
      `${field}: ${JSON.stringify(rows.slice(0, 5))}`,
    );
  }
});
