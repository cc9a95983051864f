// Map tiles for the dashboard's geo_point tracks: off unless the operator configures a tile URL
// template (`--map-tiles`, BOSUN_MAP_TILES), since a device's fleet often has no map server it may
// reach. The template's origin is the only other one the dashboard's CSP then lets images come from.
import { Type } from '@sinclair/typebox';
import { ValidationError } from '../shared/errors.js';
import type { ServerApp } from './app.js';

export interface MapTiles {
  /** `https://tiles.example/{z}/{x}/{y}.png`: {z}, {x} and {y} each once */
  url: string;
  /** shown under the map (the tile provider's terms usually require it) */
  attribution: string;
  /** the template's origin, the one the dashboard's images may come from */
  origin: string;
}

const bad = (reason: string) => new ValidationError('--map-tiles', reason, 'setting');

/** Checks a tile URL template: http(s), no credentials, {z}, {x} and {y} each exactly once. */
export function mapTiles(url: string, attribution?: string): MapTiles {
  let parsed: URL;
  try {
    parsed = new URL(url.replace(/\{[zxy]\}/g, '0'));
  } catch {
    throw bad(`not a URL: ${url}`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw bad(`http or https only: ${url}`);
  if (parsed.username || parsed.password) throw bad('a URL with credentials would be shown to every browser');
  for (const p of ['{z}', '{x}', '{y}']) {
    if (url.split(p).length !== 2) throw bad(`the template needs ${p} exactly once: ${url}`);
  }
  // the origin goes into a CSP header: nothing but scheme, host and port
  if (/[\s;,'"]/.test(parsed.origin)) throw bad(`bad host in ${url}`);
  return { url, attribution: attribution?.trim() || `Map tiles: ${parsed.host}`, origin: parsed.origin };
}

const DashboardConfig = Type.Object(
  { map_tiles: Type.Union([Type.Object({ url: Type.String(), attribution: Type.String() }), Type.Null()]) },
  { examples: [{ map_tiles: { url: 'https://tile.example.org/{z}/{x}/{y}.png', attribution: '© OpenStreetMap contributors' } }, { map_tiles: null }] },
);

/** GET /dashboard/config: what the dashboard needs before login (public: it holds no secret). */
export const dashboardConfigRoute = (tiles: MapTiles | undefined) => async (app: ServerApp) => {
  const body = { map_tiles: tiles ? { url: tiles.url, attribution: tiles.attribution } : null };
  app.get(
    '/dashboard/config',
    {
      config: { public: true },
      schema: {
        tags: ['dashboard'],
        summary: "The dashboard's settings",
        description:
          'Public, no token: `map_tiles` is the tile URL template (`{z}/{x}/{y}`, Web Mercator, 256 px tiles) and its attribution when the ' +
          'server was started with `--map-tiles` (BOSUN_MAP_TILES), else null: geo_point tracks are then drawn on their own axes.',
        security: [],
        response: { 200: DashboardConfig },
      },
    },
    async () => body,
  );
};
