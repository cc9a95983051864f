// GET /dashboard/config: public (no token), in the OpenAPI description, and the map tiles only when
// configured, with the page's CSP letting that origin's images in then only.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { mapTiles } from '../../src/server/mapTiles.js';
import { openServer, type ServerOptions } from '../../src/server/server.js';

async function server(t: { after(fn: () => Promise<void>): void }, opts: Partial<ServerOptions> = {}) {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-dashboard-config-'));
  // a built dashboard of one page, so that its CSP header can be read
  const webDir = path.join(dataDir, 'web');
  await fs.mkdir(webDir);
  await fs.writeFile(path.join(webDir, 'index.html'), '<!doctype html><title>Bosun</title>');
  const s = await openServer({ dataDir, webDir, ...opts });
  t.after(async () => {
    await s.close();
    await fs.rm(dataDir, { recursive: true, force: true });
  });
  return s;
}

test('dashboard config: public; map tiles and their CSP origin only when configured', async (t) => {
  const plain = await server(t);
  const off = await plain.app.inject({ method: 'GET', url: '/dashboard/config' });
  assert.equal(off.statusCode, 200, 'no token needed');
  assert.deepEqual(off.json(), { map_tiles: null });
  const page = await plain.app.inject({ method: 'GET', url: '/devices/x', headers: { accept: 'text/html' } });
  assert.match(String(page.headers['content-security-policy']), /img-src 'self' data:;/);
  const doc = (await plain.app.inject({ method: 'GET', url: '/openapi.json' })).json();
  const op = doc.paths['/dashboard/config'].get;
  assert.ok(op.summary && op.description, 'documented');
  assert.deepEqual(op.security, [], 'documented as public');

  const tiled = await server(t, { mapTiles: mapTiles('https://tiles.example/{z}/{x}/{y}.png', '© OSM') });
  assert.deepEqual((await tiled.app.inject({ method: 'GET', url: '/dashboard/config' })).json(), {
    map_tiles: { url: 'https://tiles.example/{z}/{x}/{y}.png', attribution: '© OSM' },
  });
  for (const url of ['/devices/x', '/']) {
    const res = await tiled.app.inject({ method: 'GET', url, headers: { accept: 'text/html' } });
    assert.equal(res.statusCode, 200, url);
    assert.match(String(res.headers['content-security-policy']), /img-src 'self' data: https:\/\/tiles\.example;/, url);
  }
});
