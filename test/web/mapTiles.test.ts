// A geo_point track over map tiles, in Debian's Chromium: with a tile URL template configured
// (`mapTiles`, i.e. --map-tiles) the track page loads its tiles from a tiny local tile server this
// test starts (PNGs it makes), lets them through its CSP, draws the track over them with the
// attribution, and logs no console error; without the setting the track is drawn on its own axes
// and no tile is asked for. Screenshots in test-results/web/.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { mapTiles } from '../../src/server/mapTiles.js';
import { openServer, type ServerOptions } from '../../src/server/server.js';
import { openBrowser } from './browser.js';

/** A 256 × 256 PNG of one colour. */
function png(r: number, g: number, b: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(zlib.crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(256, 0);
  header.writeUInt32BE(256, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8 bits, RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.from(Array.from({ length: 256 }, () => [r, g, b]).flat())]);
  const pixels = zlib.deflateSync(Buffer.concat(Array.from({ length: 256 }, () => row)));
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', header), chunk('IDAT', pixels), chunk('IEND', Buffer.alloc(0))]);
}

test('dashboard: a track over map tiles from the configured tile server, and none without the setting', async (t) => {
  const requested: string[] = [];
  const tileServer = http.createServer((req, res) => {
    requested.push(req.url ?? '');
    const m = /^\/tiles\/(\d+)\/(\d+)\/(\d+)\.png$/.exec(req.url ?? '');
    if (!m) return void res.writeHead(404).end();
    // a checkerboard, so that the screenshot shows the tiles' edges
    const light = (Number(m[2]) + Number(m[3])) % 2 === 0;
    res.writeHead(200, { 'content-type': 'image/png' }).end(light ? png(220, 235, 220) : png(190, 215, 235));
  });
  await new Promise<void>((resolve) => tileServer.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => tileServer.close(resolve)));
  const tilesOrigin = `http://127.0.0.1:${(tileServer.address() as AddressInfo).port}`;

  const browser = await openBrowser();
  t.after(() => browser.close());
  const { page, errors } = browser;
  page.setDefaultTimeout(30_000);

  /** a server of its own, the device's page open with its track plotted */
  const trackPage = async (opts: Partial<ServerOptions>) => {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-web-tiles-'));
    const server = await openServer({ dataDir, ...opts });
    t.after(async () => {
      await server.close();
      await fs.rm(dataDir, { recursive: true, force: true });
    });
    const url = await server.app.listen({ port: 0, host: '127.0.0.1' });
    const deviceId = await addDevice(server);
    await page.addInitScript((token) => sessionStorage.setItem('bosun.token', token), (await server.tokens.create('web')).token);
    const response = await page.goto(`${url}/devices/${deviceId}`);
    await page.getByLabel('Field').fill('track.pos.loc');
    await page.getByLabel('Type').selectOption('geo_point');
    await page.getByRole('button', { name: 'Plot' }).click();
    await page.getByRole('img', { name: 'track of 3 points' }).waitFor();
    return { server, url, csp: response!.headers()['content-security-policy'] ?? '' };
  };
  const addDevice = async (server: Awaited<ReturnType<typeof openServer>>) => {
    const id = randomUUID();
    const now = new Date().toISOString();
    await server.db
      .insertInto('device')
      .values({ id, unit_id: randomUUID().replaceAll('-', ''), device_type: 'generic-amd64', name: 'tracked', device_key_hash: randomUUID(), created_at: now })
      .execute();
    const points = [57.047, 57.048, 57.05].map((lat, i) => ({
      field: 'track.pos.loc',
      type: 'geo_point' as const,
      value: { lat, lon: 9.939 + i / 1000 },
      ts: (Date.now() - (30 - i) * 1000) * 1000,
    }));
    await server.logbook.store(id, 'b1', points);
    return id;
  };

  // with tiles: the page's CSP lets that origin's images in, and the tiles come from the tile server
  const tiled = await trackPage({ mapTiles: mapTiles(`${tilesOrigin}/tiles/{z}/{x}/{y}.png`, 'Tiles: the test tile server') });
  assert.match(tiled.csp, new RegExp(`img-src 'self' data: ${tilesOrigin.replaceAll('.', '\\.')};`));
  const images = page.getByTestId('map-tiles').locator('image');
  const hrefs = await images.evaluateAll((els) => els.map((e) => e.getAttribute('href')!));
  assert.ok(hrefs.length >= 4 && hrefs.every((h) => h.startsWith(`${tilesOrigin}/tiles/`)), `tiles drawn: ${hrefs.join(' ')}`);
  const wanted = hrefs.map((h) => new URL(h).pathname).sort();
  for (let i = 0; wanted.some((p) => !requested.includes(p)); i++) {
    assert.ok(i < 100, `every tile asked for (asked: ${requested.join(' ')})`);
    await page.waitForTimeout(100);
  }
  // the track over the tiles: drawn after them, inside the view
  const order = await page.getByTestId('telemetry-track').evaluate((svg) => [...svg.children].map((c) => c.tagName));
  assert.ok(order.indexOf('polyline') > order.indexOf('g'), `the track is drawn over the tiles (${order.join(', ')})`);
  await page.getByText('Tiles: the test tile server').waitFor();
  await browser.screenshot('tiles-1-track-over-tiles');
  assert.deepEqual(errors, [], 'no console error with tiles');

  // without the setting: the track on its own axes, no tile asked for, no other origin in the CSP
  const asked = requested.length;
  const plain = await trackPage({});
  assert.match(plain.csp, /img-src 'self' data:;/);
  assert.equal(await page.getByTestId('map-tiles').count(), 0);
  await page.getByTestId('telemetry-track').getByText('longitude').waitFor();
  await page.waitForTimeout(500);
  assert.equal(requested.length, asked, 'no tile request without the setting');
  await browser.screenshot('tiles-2-track-on-axes');
  assert.deepEqual(errors, [], 'no console error without tiles');
});
