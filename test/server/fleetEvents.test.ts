// The fleet's event stream (GET /dongle/devices/events/) on each storage backend, over real HTTP: a
// snapshot, then a device's state report, rename and removal as events; no token → 401; a revoked
// token's stream ends. A client that does not read is not buffered for without bound (FleetFeed on a
// socket that does not drain). And the dashboard served at `/` beside the API.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, test, type TestContext } from 'node:test';
import type { FastifyReply } from 'fastify';
import { FleetFeed } from '../../src/server/devices/fleetFeed.js';
import { backends } from './backends.js';
import { device, listen, newDevice, newProject, until, user } from './helpers.js';
import { readSse } from './sseReader.js';

interface Event {
  event: string;
  data: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

function stream(t: TestContext, base: string, token: string) {
  return readSse<Event>(t, `${base}/dongle/devices/events/`, { authorization: `APIToken ${token}` }, (f) =>
    f.data !== undefined ? { event: f.event!, data: JSON.parse(f.data) } : undefined,
  );
}

for (const backend of backends()) {
  describe(`fleet events (${backend.name})`, () => {
    test('a snapshot, then each change of a device (report, rename, removal) as it happens', async (t) => {
      const server = await backend.start(t, { fleet: { intervalMs: 20 } });
      const base = await listen(server);
      const call = user(server);
      const dev = await newDevice(server);
      const project = await newProject(server, [dev.id]);
      const live = await stream(t, base, server.firstAdminToken!);
      assert.equal(live.status, 200);
      assert.match(live.type ?? '', /^text\/event-stream/);
      await until('the snapshot', () => live.events.length === 1);
      assert.equal(live.events[0]!.event, 'snapshot');
      assert.deepEqual(
        live.events[0]!.data.map((d: { id: string }) => d.id),
        [dev.id],
      );
      assert.deepEqual(live.events[0]!.data[0], (await call('GET', `/dongle/devices/${dev.id}/`)).body, 'a device as the listing has it');

      // a report: downloading its release at 40 %
      const release = await call('POST', `/docker/projects/${project}/releases/`, { version: '1', containers: [{ name: 'web', image: 'acme/web', tag: '1' }] });
      assert.equal(release.status, 201, JSON.stringify(release.body));
      const downloading = {
        releaseId: null,
        targetReleaseId: Number(release.body.id),
        updateStatus: 'downloading',
        services: { web: { status: 'Downloading', downloadProgress: 40 } },
      };
      assert.equal((await device(base, dev.key).report({ agent_version: '9.9.9', apps: { [String(project)]: downloading } })).status, 204);
      // (the device's request may first show as its own event: last_seen, written as it was authenticated)
      const reported = (e: Event) => e.event === 'device' && e.data.state?.status === 'updating';
      await until('the report as an event', () => live.events.some(reported));
      const changed = live.events.find(reported)!.data;
      assert.equal(changed.agent_version, '9.9.9');
      assert.deepEqual(changed.state.apps[String(project)].services.web, { status: 'Downloading', download_progress: 40, error: null });

      assert.equal((await call('PATCH', `/dongle/devices/${dev.id}/`, { name: 'kiosk' })).status, 200);
      await until('the rename', () => live.events.some((e) => e.event === 'device' && e.data.name === 'kiosk'));
      const other = await newDevice(server);
      await until('a new device', () => live.events.some((e) => e.event === 'device' && e.data.id === other.id));
      assert.equal((await call('DELETE', `/dongle/devices/${dev.id}/`)).status, 204);
      await until('the removal', () => live.events.some((e) => e.event === 'removed' && e.data.id === dev.id));
      // nothing changed: nothing sent
      const count = live.events.length;
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(live.events.length, count);
      // a second stream starts with the fleet as it is
      const late = await stream(t, base, server.firstAdminToken!);
      await until('its snapshot', () => late.events.length === 1);
      assert.deepEqual(
        late.events[0]!.data.map((d: { id: string }) => d.id),
        [other.id],
      );
    });

    test('needs a token, and ends when its token is revoked', async (t) => {
      const server = await backend.start(t, { fleet: { intervalMs: 20, heartbeatMs: 50 } });
      const base = await listen(server);
      const call = user(server);
      assert.equal((await call('GET', '/dongle/devices/events/', undefined, '')).status, 401);
      assert.equal((await call('GET', '/dongle/devices/events/', undefined, 'APIToken bsn_nope')).status, 401);
      const created = await call('POST', '/auth/tokens/', { name: 'dashboard' });
      const live = await stream(t, base, String(created.body.token));
      await until('the snapshot', () => live.events.length === 1);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(live.ended(), false, 'heartbeats keep it open');
      assert.equal((await call('DELETE', `/auth/tokens/${created.body.id}/`)).status, 204);
      await until('the stream ends', () => live.ended());
    });

    test('is in the API description', async (t) => {
      const server = await backend.start(t);
      const doc = (await user(server)('GET', '/openapi.json')).body as unknown as {
        paths: Record<string, { get?: { summary?: string; description?: string } }>;
      };
      const op = doc.paths['/dongle/devices/events/']?.get;
      assert.ok(op?.summary && op.description?.includes('event: snapshot'), JSON.stringify(op));
    });
  });
}

/** A response socket that takes nothing until `release()`: a client that does not read. */
class StalledResponse extends Writable {
  private held: (() => void)[] = [];
  chunks: string[] = [];
  constructor() {
    super({ highWaterMark: 16 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void) {
    this.chunks.push(chunk.toString());
    this.held.push(done);
  }
  release() {
    for (const done of this.held.splice(0)) done();
  }
  writeHead() {
    return this;
  }
  flushHeaders() {}
}

test('a client that does not read: what waits for it stays bounded, and it gets a fresh snapshot once it reads', async () => {
  let fleet = [{ id: 'a', n: 0 }];
  const feed = new FleetFeed({ list: async () => fleet, onError: (err) => assert.fail(err), intervalMs: 5, heartbeatMs: 60_000, maxUnsentBytes: 64 });
  const res = new StalledResponse();
  const reply = { hijack() {}, raw: res, request: { raw: { socket: null } } } as unknown as FastifyReply;
  const serving = feed.serve(reply, async () => true);
  await until('the snapshot', () => res.chunks.length === 1);
  // it reads nothing while the fleet changes a hundred times
  for (let n = 1; n <= 100; n++) {
    fleet = [
      { id: 'a', n },
      { id: `b${n}`, n },
    ];
    await new Promise((r) => setTimeout(r, 2));
  }
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(res.writableLength < 1024, `at most a little waits for it (${res.writableLength} bytes)`);
  // it reads: the fleet as it is now, in one snapshot
  fleet = [{ id: 'a', n: 101 }];
  await new Promise((r) => setTimeout(r, 20));
  for (let i = 0; i < 50 && !res.chunks.at(-1)?.includes('"n":101'); i++) {
    res.release();
    await new Promise((r) => setTimeout(r, 10));
  }
  const last = res.chunks.at(-1)!;
  assert.ok(last.startsWith('event: snapshot'), last);
  assert.deepEqual(JSON.parse(last.split('data: ')[1]!), [{ id: 'a', n: 101 }]);
  res.release();
  await feed.close();
  await serving;
});

test('the dashboard at `/`: its files and its pages without a token, the API as before', async (t) => {
  const webDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-web-'));
  t.after(() => fs.rm(webDir, { recursive: true, force: true }));
  await fs.mkdir(path.join(webDir, 'assets'));
  await fs.writeFile(path.join(webDir, 'index.html'), '<!doctype html><title>Bosun</title>');
  await fs.writeFile(path.join(webDir, 'assets', 'app-1234.js'), 'console.log(1)');
  const [backend] = backends();
  const server = await backend!.start(t, { webDir });
  const get = (url: string, accept = 'text/html') => server.app.inject({ method: 'GET', url, headers: { accept } });
  const page = await get('/');
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /<title>Bosun/);
  assert.match(String(page.headers['content-security-policy']), /default-src 'self'/);
  assert.equal(page.headers['cache-control'], 'no-cache');
  const asset = await get('/assets/app-1234.js', '*/*');
  assert.equal(asset.statusCode, 200);
  assert.match(String(asset.headers['cache-control']), /immutable/);
  // a page of the dashboard's own, reloaded in the browser: index.html (SPA fallback)
  const deep = await get('/devices/abc');
  assert.equal(deep.statusCode, 200);
  assert.match(deep.body, /<title>Bosun/);
  // the API keeps its paths: JSON, and a token needed, even for a browser's navigation
  for (const url of ['/dongle/devices/', '/docker/projects/nope', '/dongle/nope']) {
    const api = await get(url);
    assert.equal(api.statusCode, 401, url);
    assert.match(String(api.headers['content-type']), /json/);
  }
  // an unknown path that is not a navigation is the API's 401, as before
  assert.equal((await get('/devices/abc', 'application/json')).statusCode, 401);
  assert.equal((await user(server)('GET', '/nope/')).status, 404, 'with a token: no such endpoint');
});

test('without a built dashboard, a navigation says how to build it', async (t) => {
  const [backend] = backends();
  const server = await backend!.start(t, { webDir: path.join(os.tmpdir(), 'bosun-no-such-web-dir') });
  const res = await server.app.inject({ method: 'GET', url: '/', headers: { accept: 'text/html' } });
  assert.equal(res.statusCode, 404);
  assert.match(res.body, /npm run build/);
});
