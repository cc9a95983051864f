// The dashboard (web/, built by `npm run build` into dist/web) served at `/` by the server itself.
// Its files are public (the data behind them needs a token); the API's routes keep precedence: a file
// is served only at a path no route has, and a browser's navigation to a path of the dashboard's own
// (a first segment no API route uses, e.g. /devices/<id>) gets index.html, so that a reload works.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerApp } from './app.js';
import type { MapTiles } from './mapTiles.js';

/** Where `npm run build` puts it: dist/web beside src/ (two levels above this file, compiled or not). */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../dist/web', import.meta.url));

/** Only what the dashboard itself loads (and the map tiles' images, when configured); inline scripts and other origins are refused. */
export const csp = (tiles?: MapTiles) =>
  `default-src 'self'; img-src 'self' data:${tiles ? ` ${tiles.origin}` : ''}; style-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'`;

export interface Dashboard {
  /** a browser's navigation to a page of the dashboard (answered with index.html, no token needed) */
  isPage(req: FastifyRequest): boolean;
  /** the not-found handler's answer for such a page */
  sendPage(reply: FastifyReply): Promise<void>;
}

/**
 * Records the first path segment of every route registered after it (call before the API's routes),
 * and serves the built dashboard from `dir` once they are all there (`register`).
 */
export function dashboard(app: ServerApp, dir = process.env.BOSUN_WEB_DIR ?? DEFAULT_WEB_DIR, tiles?: MapTiles) {
  const CSP = csp(tiles);
  const apiSegments = new Set<string>();
  app.addHook('onRoute', (r) => {
    apiSegments.add(firstSegment(r.url));
  });
  const index = path.join(dir, 'index.html');
  const built = fs.existsSync(index);
  const it: Dashboard & { register(): Promise<void> } = {
    isPage: (req) =>
      (req.method === 'GET' || req.method === 'HEAD') && !apiSegments.has(firstSegment(req.url)) && (req.headers.accept ?? '').includes('text/html'),
    async sendPage(reply) {
      if (!built) return void reply.code(404).type('text/plain').send('The dashboard is not built: run `npm run build`.');
      reply.header('content-security-policy', CSP).header('cache-control', 'no-cache').type('text/html; charset=utf-8');
      await reply.send(fs.createReadStream(index));
    },
    async register() {
      if (!built) return;
      // hashed file names under assets/: cached for good; index.html: checked every time
      await app.register(fastifyStatic, {
        root: dir,
        wildcard: false,
        decorateReply: false,
        globIgnore: [...apiSegments].map((s) => `${s}/**`),
        setHeaders: (res, file) => {
          res.setHeader('x-content-type-options', 'nosniff');
          res.setHeader('content-security-policy', CSP);
          res.setHeader('cache-control', file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
        },
        schemaHide: true,
        cacheControl: false,
      });
    },
  };
  return it;
}

const firstSegment = (url: string) => url.split('?')[0]!.split('/')[1] ?? '';
