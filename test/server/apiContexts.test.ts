// The operator API and the device link are two contexts, each with its own auth hook: a route added
// to either is refused without its kind of credentials unless it opts out (`config: { public: true }`),
// whatever its path (no `/device/` prefix rule).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';
import { deviceLinkApi, operatorApi, type ServerApp } from '../../src/server/app.js';
import { sendError } from '../../src/server/httpErrors.js';
import type { Server } from '../../src/server/server.js';
import { backends } from './backends.js';
import { newDevice } from './helpers.js';

/** An app with only the two contexts, each holding new routes that do not opt out (and one that does). */
async function appWithNewRoutes(server: Server): Promise<ServerApp> {
  const app = Fastify().withTypeProvider<TypeBoxTypeProvider>();
  app.setErrorHandler((err, _req, reply) => sendError(err as Error, reply, () => {}));
  const newRoutes = (name: string) => async (ctx: ServerApp) => {
    ctx.get(`/${name}/new`, async () => ({ ok: name }));
    ctx.get(`/device/v1/${name}-new`, async () => ({ ok: name }));
    ctx.get(`/${name}/public`, { config: { public: true } }, async () => ({ public: name }));
  };
  await app.register(operatorApi(server.tokens, [newRoutes('operator')]));
  await app.register(
    deviceLinkApi(server.db, (keys) => [
      newRoutes('link'),
      async (ctx: ServerApp) => {
        ctx.get('/device/v1/whoami', async (req) => ({ id: keys.deviceOf(req).id }));
      },
    ]),
  );
  await app.ready();
  return app;
}

for (const backend of backends()) {
  describe(`API contexts on ${backend.name}`, () => {
    test("a new route in either context is refused without credentials (and with the other context's), unless it opts out", async (t) => {
      const server = await backend.start(t);
      const app = await appWithNewRoutes(server);
      t.after(() => app.close());
      const dev = await newDevice(server);
      const get = async (url: string, authorization?: string) => {
        const res = await app.inject({ method: 'GET', url, headers: authorization ? { authorization } : {} });
        return { status: res.statusCode, body: JSON.parse(res.body) as Record<string, unknown> };
      };
      const token = `APIToken ${server.firstAdminToken!}`;
      const key = `Bearer ${dev.key}`;

      for (const url of ['/operator/new', '/device/v1/operator-new']) {
        assert.equal((await get(url)).status, 401, `${url} without a token`);
        assert.equal((await get(url, key)).status, 401, `${url} with a device key`);
        assert.deepEqual(await get(url, token), { status: 200, body: { ok: 'operator' } }, url);
      }
      for (const url of ['/link/new', '/device/v1/link-new']) {
        assert.equal((await get(url)).status, 401, `${url} without a device key`);
        assert.equal((await get(url, token)).status, 401, `${url} with a user token`);
        assert.deepEqual(await get(url, key), { status: 200, body: { ok: 'link' } }, url);
      }
      assert.deepEqual(await get('/device/v1/whoami', key), { status: 200, body: { id: dev.id } });
      // opting out, on purpose
      assert.deepEqual(await get('/operator/public'), { status: 200, body: { public: 'operator' } });
      assert.deepEqual(await get('/link/public'), { status: 200, body: { public: 'link' } });
    });
  });
}
