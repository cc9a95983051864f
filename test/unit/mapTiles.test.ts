// The dashboard's map tiles: the Web Mercator tile math (web/src/tiles.ts) and the server's check of
// the tile URL template and the CSP it leads to (src/server/mapTiles.ts, dashboard.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { csp } from '../../src/server/dashboard.js';
import { mapTiles } from '../../src/server/mapTiles.js';
import { fitView, MAX_ZOOM, project, TILE, tilesFor, tileUrl } from '../../web/src/tiles.js';

const near = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-6, `${what}: ${a} ≠ ${b}`);

test('project: known points of the slippy-map scheme', () => {
  // zoom 0: the whole world in one 256 px tile, (0°, 0°) at its centre
  near(project({ lon: 0, lat: 0 }, 0).x, 128, 'x of 0,0');
  near(project({ lon: 0, lat: 0 }, 0).y, 128, 'y of 0,0');
  near(project({ lon: -180, lat: 85.0511287798 }, 3).x, 0, 'west edge');
  near(project({ lon: -180, lat: 85.0511287798 }, 3).y, 0, 'north edge');
  near(project({ lon: 180, lat: -85.0511287798 }, 3).y, 8 * TILE, 'south edge');
  // the poles are clamped to the edges, not infinite
  assert.equal(project({ lon: 0, lat: 90 }, 2).y, project({ lon: 0, lat: 85.0511287798 }, 2).y);
  // Aalborg (57.04699 N, 9.93909 E): tile 16/34577/20061 by the OpenStreetMap wiki's formula (asinh(tan φ))
  const p = project({ lon: 9.93909, lat: 57.04699 }, 16);
  assert.deepEqual([Math.floor(p.x / TILE), Math.floor(p.y / TILE)], [34577, 20061]);
});

test('fitView: the deepest zoom that holds the track, centred', () => {
  const track = [
    { lat: 57.047, lon: 9.939 },
    { lat: 57.05, lon: 9.941 },
  ];
  const v = fitView(track, 640, 360);
  const a = track.map((p) => project(p, v.z));
  const inside = (q: { x: number; y: number }) => q.x - v.left >= 24 && q.x - v.left <= 616 && q.y - v.top >= 24 && q.y - v.top <= 336;
  assert.ok(a.every(inside), 'every point in view');
  const deeper = track.map((p) => project(p, v.z + 1));
  assert.ok(Math.abs(deeper[0]!.y - deeper[1]!.y) > 360 - 48, 'one zoom deeper would not fit');
  near((a[0]!.x + a[1]!.x) / 2 - v.left, 320, 'centred across');
  near((a[0]!.y + a[1]!.y) / 2 - v.top, 180, 'centred down');
  assert.equal(fitView([{ lat: 1, lon: 2 }], 640, 360).z, MAX_ZOOM, 'a single point: the deepest zoom');
  assert.equal(
    fitView(
      [
        { lat: -60, lon: -170 },
        { lat: 70, lon: 170 },
      ],
      640,
      360,
    ).z,
    1,
    'across the world',
  );
});

test('tilesFor: the tiles covering the view, wrapped across the antimeridian, none off the poles', () => {
  const tiles = tilesFor({ z: 2, left: 100, top: 100 }, 300, 200);
  assert.deepEqual(
    tiles.map((t) => [t.x, t.y, t.left, t.top]),
    [
      [0, 0, -100, -100],
      [1, 0, 156, -100],
      [0, 1, -100, 156],
      [1, 1, 156, 156],
    ],
  );
  // west of 180° W comes the east of the world again; above the north edge nothing
  const wrapped = tilesFor({ z: 1, left: -256, top: -100 }, 512, 200);
  assert.deepEqual(
    wrapped.map((t) => [t.x, t.y, t.left, t.top]),
    [
      [1, 0, 0, 100],
      [0, 0, 256, 100],
    ],
  );
  assert.equal(tileUrl('http://t.example/{z}/{x}/{y}.png?k=1', { z: 3, x: 4, y: 5 }), 'http://t.example/3/4/5.png?k=1');
});

test('the tile URL template: checked; its origin, and only then, allowed in the CSP', () => {
  const t = mapTiles('https://tiles.example:8443/osm/{z}/{x}/{y}.png');
  assert.equal(t.origin, 'https://tiles.example:8443');
  assert.equal(t.attribution, 'Map tiles: tiles.example:8443');
  assert.equal(mapTiles('http://a/{z}/{x}/{y}', ' © OSM ').attribution, '© OSM');
  assert.match(csp(t), /img-src 'self' data: https:\/\/tiles\.example:8443;/);
  assert.match(csp(), /img-src 'self' data:;/);
  for (const [bad, why] of [
    ['ftp://a/{z}/{x}/{y}', /http or https only/],
    ['https://a/{z}/{x}.png', /\{y\} exactly once/],
    ['https://a/{z}/{x}/{y}/{y}', /\{y\} exactly once/],
    ['https://u:p@a/{z}/{x}/{y}', /credentials/],
    ['not a url {z}{x}{y}', /not a URL/],
  ] as const) {
    assert.throws(() => mapTiles(bad), why, bad);
  }
});
