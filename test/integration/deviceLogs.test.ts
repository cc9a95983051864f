// End to end on real parts (the control plane in-process, a device agent in cloud mode, the test
// engine and registry): what a service prints reaches the server and its live tail, with the
// service's identity, beside the agent's own messages; lines printed while the server was down and
// while the agent was stopped arrive once it is back, in order, none twice, none missing.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import type { StoredLogLine } from '../../src/server/logs/deviceLogs.js';
import { controlPlane, imageName, provisionedDevice, tag } from './controlPlane.js';
import { startAgent, waitFor } from './harness.js';

type Line = StoredLogLine;

/** A live tail (Server-Sent Events), read as an EventSource would: the lines, as they come. */
async function tail(t: TestContext, url: string, token: string, headers: Record<string, string> = {}) {
  const stop = new AbortController();
  const res = await fetch(url, { headers: { authorization: `APIToken ${token}`, ...headers }, signal: stop.signal });
  assert.equal(res.status, 200);
  const lines: Line[] = [];
  const reading = (async () => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body!) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const data = buf
            .slice(0, i)
            .split('\n')
            .find((l) => l.startsWith('data: '));
          buf = buf.slice(i + 2);
          if (data) lines.push(JSON.parse(data.slice(6)) as Line);
        }
      }
    } catch {
      // aborted, or the server went away
    }
  })();
  t.after(async () => {
    stop.abort();
    await reading;
  });
  return lines;
}

const ticks = (lines: Line[]) => lines.flatMap((l) => (/^tick (\d+)$/.exec(l.message) ? [Number(/^tick (\d+)$/.exec(l.message)![1])] : []));

/** 1, 2, …, n: every tick once, in order. */
function assertCounting(seen: number[], what: string): void {
  assert.ok(seen.length > 0, `${what}: no ticks`);
  const expected = Array.from({ length: seen.at(-1)! }, (_, i) => i + 1);
  assert.deepEqual(seen, expected, `${what}: every tick once, in order`);
}

test('what a service prints reaches the server and its live tail, in order and once, across a server outage and an agent restart', async (t) => {
  const cp = await controlPlane(t);
  const { call } = cp;
  const token = cp.server.firstAdminToken!;
  const device = await provisionedDevice(t, cp, 'logs', { appUpdatePollInterval: 5000 });
  const deviceId = await device.deviceId();
  const { appId, dataDir } = device;

  // a service that counts, five ticks a second, with every tenth also on stderr
  const counter = "trap 'exit 0' TERM; i=0; while true; do i=$((i+1)); echo tick $i; [ $((i % 10)) -eq 0 ] && echo tenth $i >&2; sleep 0.2; done";
  const release = await call('POST', `/docker/projects/${appId}/releases/`, {
    version: '1.0.0',
    containers: [
      {
        name: 'counter',
        image: imageName,
        tag,
        required_tags: [],
        startup_parameters: { command: ['sh', '-c', counter], restart_policy: 'always' },
        purge_data: false,
      },
    ],
  });
  assert.equal(release.status, 201, JSON.stringify(release.body));
  const logs = async (query = '') => (await call('GET', `/dongle/devices/${deviceId}/logs/?limit=10000${query}`)).body as Line[];

  await waitFor('ticks on the server', async () => ticks(await logs()).length >= 5, 90_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${device.logs.slice(-30).join('\n')}`);
  });
  const all = await logs();
  const first = all.find((l) => l.message === 'tick 1')!;
  assert.deepEqual(
    { stream: first.stream, app_id: first.app_id, service: first.service, release_id: first.release_id },
    { stream: 'stdout', app_id: appId, service: 'counter', release_id: release.body.id },
    'a line says which service of which app and release printed it',
  );
  assert.ok(!Number.isNaN(Date.parse(first.ts)));
  assert.ok(
    all.some((l) => l.stream === 'system' && /^(Installing|Starting) service counter/.test(l.message)),
    "the agent's own messages are there too",
  );
  await waitFor('a tenth tick on stderr', async () => (await logs('&service=counter')).some((l) => l.stream === 'stderr' && l.message === 'tenth 10'), 30_000);

  // the live tail: new lines as they are printed
  const tailUrl = `${cp.url}/dongle/devices/${deviceId}/logs/tail/?service=counter&limit=0`;
  const live = await tail(t, tailUrl, token);
  await waitFor('ticks in the live tail', async () => ticks(live).length >= 5, 30_000);
  const firstLive = ticks(live)[0]!;
  assert.deepEqual(
    ticks(live),
    ticks(live).map((_, i) => firstLive + i),
    'the tail counts too',
  );

  // the server goes away for a while; the service keeps printing
  await cp.stop();
  const lastBefore = Math.max(...ticks(live));
  await new Promise((r) => setTimeout(r, 4000));
  await cp.restart();
  // the tail reconnects where it stopped (Last-Event-ID) and gets what was printed meanwhile
  const resumed = await tail(t, tailUrl, token, { 'last-event-id': String(live.at(-1)!.id) });
  await waitFor('the offline lines on the server', async () => Math.max(0, ...ticks(await logs())) >= lastBefore + 25, 90_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${device.logs.slice(-30).join('\n')}`);
  });
  await waitFor('the offline lines in the tail', async () => Math.max(0, ...ticks(resumed)) >= lastBefore + 25, 30_000);
  assert.deepEqual(
    ticks(resumed),
    ticks(resumed).map((_, i) => lastBefore + 1 + i),
    'the tail continues after its last line, none missing',
  );

  // the agent stops for a while and starts again: it goes on from its last line shipped
  await device.agent.stop();
  const stoppedAt = Math.max(...ticks(await logs()));
  await new Promise((r) => setTimeout(r, 3000));
  await startAgent(t, [], { dataDir });
  await waitFor('lines printed while the agent was stopped', async () => Math.max(0, ...ticks(await logs())) >= stoppedAt + 25, 60_000);

  assertCounting(ticks(await logs('&service=counter')), 'on the server');
  const tenths = (await logs('&service=counter')).filter((l) => l.stream === 'stderr').map((l) => l.message);
  assert.deepEqual(
    tenths,
    tenths.map((_, i) => `tenth ${(i + 1) * 10}`),
    'stderr lines once each, in order',
  );
});
