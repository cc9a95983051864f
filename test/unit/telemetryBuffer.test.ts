// The agent's side of telemetry: the disk buffer (bounded, oldest dropped first, batches that keep
// their id across a reopen), the uploader (a batch retried under the same id, deleted only once
// acknowledged), the settings of config.json and the device metrics.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { ValidationError } from '../../src/shared/errors.js';
import { EventLog } from '../../src/agent/eventLog.js';
import { openAgentDb, type AgentDb } from '../../src/agent/store/database.js';
import { DeviceMetrics } from '../../src/agent/telemetry/deviceMetrics.js';
import { TelemetryBuffer } from '../../src/agent/telemetry/telemetryBuffer.js';
import { DEFAULT_BUFFER_BYTES, telemetrySettings } from '../../src/agent/telemetry/telemetrySettings.js';
import { TelemetryUploader } from '../../src/agent/telemetry/telemetryUploader.js';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-telemetry-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function agentDb(t: TestContext, dir: string): Promise<AgentDb> {
  const db = await openAgentDb(path.join(dir, 'agent.sqlite'));
  t.after(() => db.destroy());
  return db;
}

/** A point's JSON of `bytes` bytes, told apart by `n`. */
const point = (n: number, bytes = 100) => {
  const head = `{"field":"f","type":"int","value":${n},"ts":"2021-01-01T00:00:00.000000Z","pad":"`;
  return `${head}${'x'.repeat(bytes - head.length - 2)}"}`;
};
const values = (points: string[]) => points.map((p) => (JSON.parse(p) as { value: number }).value);

test('buffer: batches of the oldest points; a batch not acknowledged is sent again, with the same id, also after a reopen', async (t) => {
  const dir = await tempDir(t);
  let db = await agentDb(t, dir);
  let buffer = await TelemetryBuffer.open(db, 1024 * 1024);
  assert.equal(await buffer.next(10), undefined);
  await buffer.add([1, 2, 3, 4, 5].map((n) => point(n)));
  assert.deepEqual(buffer.size, { points: 5, bytes: 500 });
  const first = (await buffer.next(3))!;
  assert.deepEqual(values(first.points), [1, 2, 3]);
  await buffer.add([point(6)]);
  // not acknowledged: the same batch again
  assert.deepEqual(await buffer.next(3), first);

  await db.destroy();
  db = await agentDb(t, dir);
  buffer = await TelemetryBuffer.open(db, 1024 * 1024);
  assert.deepEqual(buffer.size, { points: 6, bytes: 600 });
  assert.deepEqual(await buffer.next(100), first, 'the batch keeps its id and its points across a restart');
  await buffer.ack(first.id);
  assert.deepEqual(buffer.size, { points: 3, bytes: 300 });
  const second = (await buffer.next(100))!;
  assert.notEqual(second.id, first.id);
  assert.deepEqual(values(second.points), [4, 5, 6]);
  await buffer.ack(second.id);
  assert.equal(await buffer.next(100), undefined);
  assert.deepEqual(buffer.size, { points: 0, bytes: 0 });
});

test('buffer: beyond its bound the oldest points go (down to 90 %), a batch being sent among them', async (t) => {
  const db = await agentDb(t, await tempDir(t));
  const buffer = await TelemetryBuffer.open(db, 1000);
  assert.equal(await buffer.add([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => point(n))), 0);
  const sending = (await buffer.next(3))!;
  // 1,100 bytes: 200 over 900 → the two oldest go
  assert.equal(await buffer.add([point(11)]), 2);
  assert.deepEqual(buffer.size, { points: 9, bytes: 900 });
  assert.deepEqual(values((await buffer.next(100))!.points), [3], 'what is left of the batch, under its id');
  assert.equal((await buffer.next(100))!.id, sending.id);
  await buffer.ack(sending.id);
  assert.deepEqual(values((await buffer.next(100))!.points), [4, 5, 6, 7, 8, 9, 10, 11]);
  // one large addition: the oldest ones, as many as needed
  assert.equal(await buffer.add([12, 13, 14].map((n) => point(n, 300))), 8);
  assert.deepEqual(buffer.size, { points: 3, bytes: 900 });
});

test('uploader: a failed upload is retried with the same batch id, and the points leave only once the server answered 200', async (t) => {
  const db = await agentDb(t, await tempDir(t));
  const buffer = await TelemetryBuffer.open(db, 1024 * 1024);
  const received: { status: number; auth: string | undefined; body: { batch: string; points: { value: number }[] } }[] = [];
  const answers = [503, 200, 400];
  const server = http.createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const status = answers.shift() ?? 200;
      received.push({ status, auth: req.headers.authorization, body: JSON.parse(text) as (typeof received)[number]['body'] });
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(status === 200 ? {} : { detail: 'no' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const lines: string[] = [];
  const log = new EventLog('info', new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }));
  let key: string | undefined;
  const uploader = new TelemetryUploader(buffer, { endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, deviceKey: () => key }, log);
  t.after(() => uploader.stop());

  await buffer.add([point(1), point(2)]);
  uploader.kick(0);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(received.length, 0, 'nothing is sent before the device has a key');
  key = 'device-key';
  await waitUntil(() => received.length === 2 && buffer.size.points === 0);
  assert.deepEqual(
    received.map((r) => [r.status, r.auth]),
    [
      [503, 'Bearer device-key'],
      [200, 'Bearer device-key'],
    ],
  );
  assert.equal(received[1]!.body.batch, received[0]!.body.batch);
  assert.deepEqual(
    received[1]!.body.points.map((p) => p.value),
    [1, 2],
  );
  assert.ok(lines.some((l) => /Telemetry not uploaded: the server answered 503: no; 2 points kept on disk/.test(l)));

  // A batch the server refuses (400) is dropped, and said so; the next one goes on.
  await buffer.add([point(3)]);
  uploader.kick(0);
  await waitUntil(() => received.length === 3 && buffer.size.points === 0);
  assert.ok(lines.some((l) => /the server refused 1 points, which are dropped/.test(l)));
  await buffer.add([point(4)]);
  uploader.kick(0);
  await waitUntil(() => received.length === 4 && buffer.size.points === 0);
  assert.notEqual(received[3]!.body.batch, received[2]!.body.batch);
});

test('settings: config.json metricsInterval and telemetryBufferBytes, the flag first; an invalid value is named', () => {
  assert.deepEqual(telemetrySettings({}, 'config.json'), { metricsIntervalMs: 0, bufferBytes: DEFAULT_BUFFER_BYTES });
  assert.deepEqual(telemetrySettings({ metricsInterval: 30_000, telemetryBufferBytes: 1 << 20 }, 'config.json'), {
    metricsIntervalMs: 30_000,
    bufferBytes: 1 << 20,
  });
  assert.deepEqual(telemetrySettings({ metricsInterval: 30_000 }, 'config.json', 0), { metricsIntervalMs: 0, bufferBytes: DEFAULT_BUFFER_BYTES });
  for (const [config, field] of [
    [{ metricsInterval: 500 }, '/metricsInterval'],
    [{ metricsInterval: '1m' }, '/metricsInterval'],
    [{ telemetryBufferBytes: 10 }, '/telemetryBufferBytes'],
  ] as const) {
    assert.throws(
      () => telemetrySettings(config, '/data/config.json'),
      (err: unknown) => err instanceof ValidationError && err.field === field && /config file \/data\/config.json/.test(err.message),
    );
  }
});

test("device metrics: cpu (from the second sample), memory, disk, and the hottest thermal zone's temperature where there is one", async (t) => {
  const dir = await tempDir(t);
  const metrics = (thermalRoot: string) => new DeviceMetrics({ intervalMs: 1000, dataDir: dir, thermalRoot, record: async () => {}, onError: () => {} });
  const thermal = path.join(dir, 'thermal');
  for (const [zone, milli] of [
    ['thermal_zone0', '41234'],
    ['thermal_zone1', '52500'],
    ['cooling_device0', '99000'],
  ]) {
    await fs.mkdir(path.join(thermal, zone), { recursive: true });
    await fs.writeFile(path.join(thermal, zone, 'temp'), `${milli}\n`);
  }
  const m = metrics(thermal);
  await new Promise((r) => setTimeout(r, 200));
  const points = await m.sample(Date.UTC(2021, 0, 1));
  const byField = Object.fromEntries(points.map((p) => [p.field, p]));
  assert.deepEqual(Object.keys(byField).sort(), ['device.cpu.usage', 'device.disk.usage', 'device.memory.usage', 'device.temperature']);
  assert.equal(byField['device.temperature']!.value, 52.5);
  for (const p of points) {
    assert.equal(p.type, 'float');
    assert.equal(p.ts, Date.UTC(2021, 0, 1) * 1000);
    assert.ok((p.value as number) >= 0 && (p.value as number) <= 100, `${p.field}: ${String(p.value)}`);
  }
  const noThermal = await metrics(path.join(dir, 'none')).sample();
  assert.deepEqual(
    noThermal.map((p) => p.field).sort(),
    ['device.disk.usage', 'device.memory.usage'],
    'no cpu figure before a second sample, no temperature without zones',
  );
});

async function waitUntil(check: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}
