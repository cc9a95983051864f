// Web Mercator tile math (the slippy-map scheme of OpenStreetMap and most tile servers: 256 px tiles,
// zoom z has 2^z × 2^z of them, x from 180° W eastwards, y from 85.0511° N southwards). Pure, so that
// it is unit-tested (test/unit/mapTiles.test.ts); the track page draws what it computes.

export const TILE = 256;
/** beyond it a tile server has nothing, and the projection runs to infinity at the poles */
export const MAX_LAT = 85.0511287798;
export const MAX_ZOOM = 18;

export interface LonLat {
  lon: number;
  lat: number;
}

/** A position in world pixels at zoom z: (0, 0) is the top-left corner of tile 0/0/0 scaled up. */
export function project({ lon, lat }: LonLat, z: number): { x: number; y: number } {
  const size = TILE * 2 ** z;
  const phi = (Math.max(-MAX_LAT, Math.min(MAX_LAT, lat)) * Math.PI) / 180;
  return { x: ((lon + 180) / 360) * size, y: ((1 - Math.log(Math.tan(phi) + 1 / Math.cos(phi)) / Math.PI) / 2) * size };
}

/** What a map of width × height px shows: its zoom and the world pixel at its top-left corner. */
export interface View {
  z: number;
  left: number;
  top: number;
}

/** The deepest zoom at which every point fits inside width × height less `pad` px on each side, centred. */
export function fitView(points: readonly LonLat[], width: number, height: number, pad = 24): View {
  const box = (z: number) => {
    const ps = points.map((p) => project(p, z));
    const xs = ps.map((p) => p.x);
    const ys = ps.map((p) => p.y);
    return { x0: Math.min(...xs), x1: Math.max(...xs), y0: Math.min(...ys), y1: Math.max(...ys) };
  };
  let z = MAX_ZOOM;
  let b = box(z);
  while (z > 0 && (b.x1 - b.x0 > width - 2 * pad || b.y1 - b.y0 > height - 2 * pad)) b = box(--z);
  return { z, left: (b.x0 + b.x1) / 2 - width / 2, top: (b.y0 + b.y1) / 2 - height / 2 };
}

/** A tile to draw: its address (x wrapped around the antimeridian) and where it goes in the view, in px. */
export interface PlacedTile {
  z: number;
  x: number;
  y: number;
  left: number;
  top: number;
}

/** Every tile that covers the view; none above the north or below the south edge of the world. */
export function tilesFor(view: View, width: number, height: number): PlacedTile[] {
  const n = 2 ** view.z;
  const tiles: PlacedTile[] = [];
  for (let ty = Math.floor(view.top / TILE); ty * TILE < view.top + height; ty++) {
    if (ty < 0 || ty >= n) continue;
    for (let tx = Math.floor(view.left / TILE); tx * TILE < view.left + width; tx++) {
      tiles.push({ z: view.z, x: ((tx % n) + n) % n, y: ty, left: tx * TILE - view.left, top: ty * TILE - view.top });
    }
  }
  return tiles;
}

/** A tile's URL from the server's template (`…/{z}/{x}/{y}.png`). */
export const tileUrl = (template: string, t: { z: number; x: number; y: number }) =>
  template.replace('{z}', String(t.z)).replace('{x}', String(t.x)).replace('{y}', String(t.y));
