// The UniK daemon's REST API, served by the agent (`--unik-port`, 3000 by default) so that UniK's CLI
// and Go client drive the device unchanged (/work reference: unik-daemon-api.md). No key, like
// UniK's; it listens on loopback by default, and refuses what a web page could send (another
// origin, a Host that is not this machine: DNS rebinding), since a page could post a form to it.
// Bodies: UniK's client POSTs the literal `null` with no Content-Type when it has no payload, JSON
// for run and hub calls, multipart for uploads (read by the routes themselves, streamed to disk).
// Errors and plain strings are raw text, as UniK's client prints them. Loaded on the first request.
import Fastify from 'fastify';
import { assertSameOrigin, ForbiddenRequest, isCommandApiHost } from '../api/requestGuard.js';
import type { Api } from '../api/apiRequest.js';
import { UnikError, type UnikErrorKind } from './provider.js';
import { UnikContext, type UnikApiOptions } from './unikContext.js';
import { imageRoutes } from './routesImages.js';
import { instanceRoutes } from './routesInstances.js';
import { volumeRoutes } from './routesVolumes.js';

const STATUS: Record<UnikErrorKind, number> = { 'bad-request': 400, 'not-found': 404, conflict: 409, 'insufficient-storage': 507, failed: 500 };

/** A body without Content-Type: UniK's `null` (or nothing). */
const NO_TYPE = 'application/x-unik-untyped';
const SMALL_BODY = 1024 * 1024;

export async function buildUnikApi(options: UnikApiOptions, listenAddress: string): Promise<Api> {
  const ctx = new UnikContext(options);
  const app = Fastify({
    logger: false,
    bodyLimit: SMALL_BODY,
    routerOptions: { ignoreTrailingSlash: true },
    // no route schemas (the routes check what UniK's client sends themselves): fastify's default
    // compilers (Ajv, fast-json-stringify) are not in the agent bundle, and none is needed
    schemaController: { compilersFactory: { buildValidator: (() => () => () => true) as never, buildSerializer: (() => () => JSON.stringify) as never } },
  });
  app.addHook('onRequest', async (req) => {
    if (!isCommandApiHost(req.headers.host, listenAddress))
      throw new ForbiddenRequest(`requests must be addressed to this machine, not Host ${req.headers.host ?? '(none)'}`);
    assertSameOrigin(req.headers);
    if (req.method !== 'GET' && req.method !== 'DELETE' && !req.headers['content-type']) req.headers['content-type'] = NO_TYPE;
  });
  app.addContentTypeParser(NO_TYPE, { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body).trim();
    if (text === '' || text === 'null') return done(null, null);
    try {
      done(null, JSON.parse(text));
    } catch {
      done(new UnikError('bad-request', 'the body is neither empty, null nor JSON'), undefined);
    }
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(String(body))));
  });
  // multipart bodies stay unread here: the upload routes stream them from req.raw
  app.addContentTypeParser('multipart/form-data', (_req, _payload, done) => done(null, undefined));

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err instanceof UnikError ? STATUS[err.kind] : (err.statusCode ?? 500);
    if (status >= 500) options.log.warn(`UniK API: ${err.message}`);
    reply.code(status).type('text/plain; charset=utf-8').send(err.message);
  });
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .type('text/plain; charset=utf-8')
      .send(`no such endpoint: ${req.method} ${req.url.split('?')[0]}`),
  );

  app.get('/available_providers', async () => options.providers.map((p) => p.name));
  app.get('/available_compilers', async () => ctx.compilerNames());
  app.get<{ Querystring: Record<string, string | undefined> }>('/describe_compiler', async (req, reply) => {
    const provider = ctx.provider(req.query.provider);
    const compiler = provider.compilers.find((c) => c.base === req.query.base && c.lang === req.query.lang);
    if (!compiler) throw new UnikError('not-found', `provider ${provider.name} has no compiler for base ${req.query.base} and language ${req.query.lang}`);
    return reply.type('text/plain; charset=utf-8').send(compiler.description || '<missing compiler description>');
  });
  imageRoutes(app, ctx);
  instanceRoutes(app, ctx);
  volumeRoutes(app, ctx);
  // a provider that cannot list now (the engine restarting) leaves the pruning to the next load
  await ctx.pruneKept().catch((err: Error) => options.log.warn(`UniK API: kept files not pruned: ${err.message}`));
  await app.ready();
  return app as unknown as Api;
}
