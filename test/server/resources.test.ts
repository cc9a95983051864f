// The control plane's API on each storage backend: tokens, registries, projects — shapes, status
// codes and validation as an AutoPi API client sees them.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backends } from './backends.js';
import { user } from './helpers.js';

for (const backend of backends()) {
  describe(`server API on ${backend.name}`, () => {
    test('tokens: the first start makes an admin token; others are created, listed, revoked; 401 without one', async (t) => {
      const server = await backend.start(t);
      const call = user(server);
      assert.match(server.firstAdminToken!, /^bsn_[A-Za-z0-9_-]{43}$/);
      assert.equal((await call('GET', '/docker/registries/', undefined, '')).status, 401);
      const bad = await call('GET', '/docker/registries/', undefined, 'APIToken bsn_wrong');
      assert.equal(bad.status, 401);
      assert.match(String(bad.body.detail), /invalid/);
      assert.equal((await call('GET', '/docker/registries/', undefined, `Bearer ${server.firstAdminToken}`)).status, 200);

      const created = await call('POST', '/auth/tokens/', { name: 'ci script' });
      assert.equal(created.status, 201);
      const token = String(created.body.token);
      assert.equal((await user(server, token)('GET', '/docker/projects/')).status, 200);
      const listed = await call('GET', '/auth/tokens/');
      assert.deepEqual(
        listed.body.map((x) => x.name),
        ['admin', 'ci script'],
      );
      assert.ok(!JSON.stringify(listed.body).includes(token), 'tokens are never shown again');
      assert.equal((await call('DELETE', `/auth/tokens/${String(created.body.id)}/`)).status, 204);
      assert.equal((await user(server, token)('GET', '/docker/projects/')).status, 401, 'a revoked token stops working at once');
      assert.equal((await call('DELETE', `/auth/tokens/${String(created.body.id)}/`)).status, 404);

      const expired = await call('POST', '/auth/tokens/', { name: 'old', expires_at: '2020-01-01T00:00:00Z' });
      assert.equal((await user(server, String(expired.body.token))('GET', '/docker/projects/')).status, 401, 'an expired token is refused');
      assert.equal((await call('POST', '/auth/tokens/', { name: 'x', expires_at: 'tomorrow' })).status, 400);
    });

    test('registries: CRUD with the AutoPi shapes; the password is write-only and sealed at rest', async (t) => {
      const server = await backend.start(t);
      const call = user(server);
      const created = await call('POST', '/docker/registries/', { url: 'registry.example.com:5000', username: 'bob', password: 's3cr3t-pw' });
      assert.equal(created.status, 201);
      assert.deepEqual(Object.keys(created.body).sort(), ['id', 'url', 'username']);
      const id = Number(created.body.id);
      assert.deepEqual((await call('GET', `/docker/registries/${id}/`)).body, { id, url: 'registry.example.com:5000', username: 'bob' });
      assert.deepEqual((await call('GET', `/docker/registries/${id}`)).body.id, id, 'the trailing slash is optional');
      const stored = await server.db.selectFrom('registry').select('password_sealed').where('id', '=', id).executeTakeFirstOrThrow();
      assert.ok(!stored.password_sealed.includes('s3cr3t-pw'), 'the password is not stored in clear');

      const patched = await call('PATCH', `/docker/registries/${id}/`, { username: 'alice' });
      assert.deepEqual(patched.body, { id, url: 'registry.example.com:5000', username: 'alice' });
      const put = await call('PUT', `/docker/registries/${id}/`, { url: 'other.example.com', username: 'carol' });
      assert.deepEqual(put.body, { id, url: 'other.example.com', username: 'carol' });
      assert.equal((await call('PUT', `/docker/registries/${id}/`, { username: 'x' })).status, 400, 'PUT needs the whole entity');
      assert.deepEqual(
        (await call('GET', '/docker/registries/')).body.map((r) => r.id),
        [id],
      );
      assert.equal((await call('DELETE', `/docker/registries/${id}/`)).status, 204);
      assert.equal((await call('GET', `/docker/registries/${id}/`)).status, 404);
      assert.equal((await call('DELETE', `/docker/registries/${id}/`)).status, 404);
    });

    test('bad input is a 400 naming the field; unknown ids are 404; nothing is stored', async (t) => {
      const server = await backend.start(t);
      const call = user(server);
      const missing = await call('POST', '/docker/registries/', { url: 'r.example.com', username: 'u' });
      assert.equal(missing.status, 400);
      assert.match(String(missing.body.detail), /password/);
      const extra = await call('POST', '/docker/registries/', { url: 'r', username: 'u', password: 'p', colour: 'red' });
      assert.equal(extra.status, 400);
      assert.equal(extra.body.field, '/colour');
      assert.match(String(extra.body.detail), /colour: unknown field/);
      assert.equal((await call('GET', '/docker/registries/abc/')).status, 400);
      assert.equal((await call('GET', '/docker/projects/999/')).status, 404);
      assert.deepEqual((await call('GET', '/docker/registries/')).body, []);
      const badJson = await server.app.inject({
        method: 'POST',
        url: '/docker/projects/',
        headers: { authorization: `APIToken ${server.firstAdminToken}`, 'content-type': 'application/json' },
        payload: '{"name":',
      });
      assert.equal(badJson.statusCode, 400);
    });

    test('projects: CRUD; references to a registry or device that does not exist are 400 naming the field', async (t) => {
      const server = await backend.start(t);
      const call = user(server);
      const registry = Number((await call('POST', '/docker/registries/', { url: 'r.example.com', username: 'u', password: 'p' })).body.id);
      const created = await call('POST', '/docker/projects/', { name: 'fleet-a', description: 'trucks', default_registry: registry });
      assert.equal(created.status, 201);
      const id = Number(created.body.id);
      assert.deepEqual(created.body, { id, name: 'fleet-a', description: 'trucks', default_registry: registry, devices: [] });

      const noRegistry = await call('POST', '/docker/projects/', { name: 'b', default_registry: 4242 });
      assert.equal(noRegistry.status, 400);
      assert.equal(noRegistry.body.field, '/default_registry');
      const noDevice = await call('PATCH', `/docker/projects/${id}/`, { devices: ['9f0c-unknown'] });
      assert.equal(noDevice.status, 400);
      assert.equal(noDevice.body.field, '/devices/0');
      assert.equal((await call('GET', `/docker/projects/${id}/`)).body.description, 'trucks', 'a refused update changes nothing');

      // a registry in use as a default cannot go
      assert.equal((await call('DELETE', `/docker/registries/${registry}/`)).status, 409);
      const put = await call('PUT', `/docker/projects/${id}/`, { name: 'fleet-a2' });
      assert.deepEqual(put.body, { id, name: 'fleet-a2', description: '', default_registry: null, devices: [] });
      assert.equal((await call('DELETE', `/docker/registries/${registry}/`)).status, 204);
      assert.equal((await call('DELETE', `/docker/projects/${id}/`)).status, 204);
      assert.deepEqual((await call('GET', '/docker/projects/')).body, []);
    });

    test('the OpenAPI document describes the resources and needs no token', async (t) => {
      const server = await backend.start(t);
      const res = await server.app.inject({ method: 'GET', url: '/openapi.json' });
      assert.equal(res.statusCode, 200);
      const doc = JSON.parse(res.body) as { openapi: string; paths: Record<string, unknown> };
      assert.match(doc.openapi, /^3\./);
      for (const p of ['/docker/registries/', '/docker/registries/{id}/', '/docker/projects/', '/docker/projects/{id}/', '/auth/tokens/']) {
        assert.ok(doc.paths[p], `${p} is documented`);
      }
      const registryPost = JSON.stringify(doc.paths['/docker/registries/']);
      assert.match(registryPost, /"writeOnly":true/, 'the password is documented as write-only');
      const page = await server.app.inject({ method: 'GET', url: '/docs/' });
      assert.equal(page.statusCode, 200);
      assert.match(page.body, /swagger-ui/i, 'an interactive docs page');
    });
  });
}
