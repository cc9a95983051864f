// Dependent devices over the device link, on each storage backend: the gateway's target carries its
// dependent apps and devices (ETag changes and a held poll wakes on every change an operator makes),
// provisioning is idempotent by uuid and scoped to the apps the gateway is given, state reports and
// log lines count only for the gateway's own dependent devices.
import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { MAX_DEPENDENT_DEVICES, type DependentTarget } from '../../src/shared/dependents.js';
import { backends } from './backends.js';
import { DIGEST, fleet } from './dependentFixtures.js';
import { until } from './helpers.js';

for (const backend of backends()) {
  describe(`dependent devices over the device link on ${backend.name}`, () => {
    test("the gateway's target carries its dependent apps and devices; each operator change moves its ETag and wakes its poll", async (t) => {
      const server = await backend.start(t);
      const f = await fleet(server);
      let polled = await f.a.link.state();
      assert.equal(polled.status, 200);
      const dependent = () => polled.body!.dependent as DependentTarget;
      assert.deepEqual(dependent().apps, { [f.app]: { name: 'edge', parent_app: f.project, device_type: 'esp32', release: null, config: {} } });
      assert.deepEqual(dependent().devices, {});
      // the gateway of the other project gets only that project's app
      assert.deepEqual(Object.keys(((await f.c.link.state()).body!.dependent as DependentTarget).apps), [String(f.otherApp)]);

      /** `change` wakes the poll the gateway holds, with a new ETag. */
      const wakes = async (what: string, change: () => Promise<unknown>) => {
        const held = f.a.link.state({ etag: polled.etag!, wait: 30 });
        await new Promise((r) => setTimeout(r, 50));
        await change();
        const next = await held;
        assert.equal(next.status, 200, `${what}: the held poll answers with the new target`);
        assert.notEqual(next.etag, polled.etag, what);
        polled = next;
      };
      await wakes('a release', async () =>
        assert.equal((await f.call('POST', `/docker/dependent-apps/${f.app}/releases/`, { image: 'acme/firmware', tag: '1.0' })).status, 201),
      );
      const first = dependent().apps[f.app]!.release!;
      assert.match(first.commit, /^[0-9a-f]{8}$/, 'no digest from the registry: the version hash');
      assert.equal(first.image, 'acme/firmware:1.0');
      await wakes('an app change', async () =>
        assert.equal((await f.call('PATCH', `/docker/dependent-apps/${f.app}`, { config: { BAUD: '115200' } })).status, 200),
      );
      assert.deepEqual(dependent().apps[f.app]!.config, { BAUD: '115200' });

      let uuid = '';
      await wakes('a provisioned device', async () => {
        const p = await f.a.provision({ app_id: f.app });
        assert.equal(p.status, 201);
        uuid = String(p.body.uuid);
      });
      assert.deepEqual(dependent().devices[uuid], {
        id: dependent().devices[uuid]!.id,
        app_id: f.app,
        name: dependent().devices[uuid]!.name,
        device_type: 'esp32',
        commit: first.commit,
        environment: {},
        config: {},
      });
      await wakes('a second release', async () =>
        assert.equal((await f.call('POST', `/docker/dependent-apps/${f.app}/releases/`, { image: 'acme/firmware', tag: DIGEST })).status, 201),
      );
      assert.equal(dependent().apps[f.app]!.release!.commit, DIGEST, 'a digest tag is the commit');
      assert.equal(dependent().apps[f.app]!.release!.image, `acme/firmware@${DIGEST}`);
      assert.equal(dependent().devices[uuid]!.commit, DIGEST, 'an unpinned device follows the newest');
      await wakes('a pin', async () => assert.equal((await f.call('PATCH', `/dependent-devices/${uuid}`, { target_commit: first.commit })).status, 200));
      assert.equal(dependent().devices[uuid]!.commit, first.commit);
      assert.deepEqual(dependent().apps[f.app]!.pinned_releases, [first], 'the release it is pinned to, so that the gateway can fetch its assets');
      await wakes('environment and config', async () =>
        assert.equal((await f.call('PATCH', `/dependent-devices/${uuid}`, { environment: { MODE: 'fast' }, config: { LED: 'on' } })).status, 200),
      );
      assert.deepEqual([dependent().devices[uuid]!.environment, dependent().devices[uuid]!.config], [{ MODE: 'fast' }, { LED: 'on' }]);
      await wakes('an unpin', async () => assert.equal((await f.call('PATCH', `/dependent-devices/${uuid}`, { target_commit: null })).status, 200));
      assert.equal(dependent().devices[uuid]!.commit, DIGEST);
      assert.equal(dependent().apps[f.app]!.pinned_releases, undefined);
      await wakes('a deleted device', async () => assert.equal((await f.call('DELETE', `/dependent-devices/${uuid}`)).status, 204));
      assert.deepEqual(dependent().devices, {});
      await wakes('a deleted app', async () => assert.equal((await f.call('DELETE', `/docker/dependent-apps/${f.app}`)).status, 204));
      assert.equal(polled.body!.dependent, undefined, 'no dependent app left: no dependent part');
      // the other project's gateway never moved
      assert.equal(Object.keys(((await f.c.link.state()).body!.dependent as DependentTarget).devices).length, 0);
    });

    test('a device deleted before its gateway saw it in a target: its uuid is in the target as deleted, and not provisioned again', async (t) => {
      const server = await backend.start(t);
      const f = await fleet(server);
      const own = 'dead'.repeat(8);
      assert.equal((await f.a.provision({ app_id: f.app, uuid: own })).status, 201);
      assert.equal((await f.call('DELETE', `/dependent-devices/${own}`)).status, 204);
      const target = (await f.a.link.state()).body!.dependent as DependentTarget;
      assert.deepEqual(target.devices, {});
      assert.deepEqual(target.deleted, [own], 'the gateway learns it is gone though no target of its listed it');
      assert.equal(((await f.b.link.state()).body!.dependent as DependentTarget).deleted, undefined, "not another gateway's");
      const late = await f.a.provision({ app_id: f.app, uuid: own });
      assert.equal(late.status, 409, 'a late registration does not bring it back');
      assert.match(String(late.body.detail), /deleted/);
    });

    // …409 for another gateway or app, 404 for an app not given, 400 naming the field
    test('provisioning: idempotent by uuid (one device), generated uuid and name', async (t) => {
      const server = await backend.start(t);
      const f = await fleet(server);
      const made = await f.a.provision({ app_id: f.app });
      assert.equal(made.status, 201);
      assert.match(String(made.body.uuid), /^[0-9a-f]{32}$/);
      assert.match(String(made.body.name), /^[a-z]+-[a-z]+$/);
      assert.deepEqual({ ...made.body, id: 0, uuid: '', name: '' }, { id: 0, uuid: '', name: '', note: null, device_type: 'esp32', app_id: f.app });

      const own = 'c0ffee'.repeat(6);
      const offline = await f.a.provision({ app_id: f.app, uuid: own, name: 'door-sensor', device_type: 'esp8266' });
      assert.equal(offline.status, 201);
      const again = await f.a.provision({ app_id: f.app, uuid: own, name: 'door-sensor', device_type: 'esp8266' });
      assert.equal(again.status, 200, 'the same uuid again: the same device');
      assert.deepEqual(again.body, offline.body);
      const twice = await Promise.all([f.a.provision({ app_id: f.app, uuid: 'ab'.repeat(16) }), f.a.provision({ app_id: f.app, uuid: 'ab'.repeat(16) })]);
      assert.deepEqual(twice.map((r) => r.status).sort(), [200, 201], 'two at once: one device');
      assert.equal(twice[0]!.body.id, twice[1]!.body.id);
      const listed = await f.call('GET', `/dependent-devices/?gateway=${f.a.id}`);
      assert.equal(listed.body.length, 3);

      assert.equal((await f.b.provision({ app_id: f.app, uuid: own })).status, 409, "another gateway's device");
      assert.equal((await f.c.provision({ app_id: f.app })).status, 404, 'an app of a project the gateway does not run');
      assert.equal((await f.a.provision({ app_id: f.otherApp })).status, 404);
      assert.equal((await f.a.provision({ app_id: 999 })).status, 404);
      const second = await f.call('POST', `/docker/projects/${f.project}/dependent-apps/`, { name: 'other-edge', device_type: 'nrf52' });
      assert.equal((await f.a.provision({ app_id: second.body.id, uuid: own })).status, 409, 'a device of another app');
      for (const [body, field] of [
        [{ app_id: f.app, uuid: 'XYZ' }, '/uuid'],
        [{}, '/app_id'],
        [{ app_id: f.app, colour: 'red' }, '/colour'],
        [{ app_id: f.app, name: '' }, '/name'],
      ] as const) {
        const res = await f.a.provision(body);
        assert.equal(res.status, 400, JSON.stringify(body));
        assert.equal(res.body.field, field);
      }
      // at most MAX_DEPENDENT_DEVICES per gateway (what its target may hold); a repeat still answers
      const now = new Date().toISOString();
      const rows = Array.from({ length: MAX_DEPENDENT_DEVICES - 3 }, (_, i) => ({
        uuid: i.toString(16).padStart(32, '0'),
        app_id: f.app,
        gateway_id: f.a.id,
        name: `d${i}`,
        device_type: 'esp32',
        target_environment: '{}',
        target_config: '{}',
        created_at: now,
      }));
      for (let i = 0; i < rows.length; i += 200)
        await server.db
          .insertInto('dependent_device')
          .values(rows.slice(i, i + 200))
          .execute();
      const full = await f.a.provision({ app_id: f.app });
      assert.equal(full.status, 409);
      assert.match(String(full.body.detail), /1024 dependent devices/);
      assert.equal((await f.a.provision({ app_id: f.app, uuid: own })).status, 200);
      assert.equal((await f.b.provision({ app_id: f.app })).status, 201, 'another gateway is not held back');
      const noKey = await fetch(`${f.base}/device/v1/dependent-devices`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
      assert.equal(noKey.status, 401);
    });

    test("state reports: only what changed merges; a report on another gateway's or an unknown device is ignored", async (t) => {
      const server = await backend.start(t);
      const f = await fleet(server);
      const uuid = String((await f.a.provision({ app_id: f.app })).body.uuid);
      const { etag } = await f.a.link.state();
      const seen = '2024-05-01T10:00:00.000Z';
      const report = { commit: 'abc123', status: 'Updating', is_online: true, download_progress: 40, environment: { MODE: 'slow' }, last_seen: seen };
      assert.equal((await f.a.link.report({ dependent_devices: { [uuid]: report } })).status, 204);
      const shown = async () => (await f.call('GET', `/dependent-devices/${uuid}`)).body;
      assert.deepEqual(
        (({ commit, status, is_online, download_progress, environment, last_seen }) => ({
          commit,
          status,
          is_online,
          download_progress,
          environment,
          last_seen,
        }))(await shown()),
        report,
      );
      assert.equal((await f.a.link.state()).etag, etag, 'a report does not change the target');
      // what changed only: the rest stays
      assert.equal((await f.a.link.report({ dependent_devices: { [uuid]: { status: 'Idle', download_progress: null } } })).status, 204);
      const after = await shown();
      assert.deepEqual([after.status, after.download_progress, after.commit, after.is_online], ['Idle', null, 'abc123', true]);
      assert.notEqual(after.last_seen, seen, 'no last_seen: when the server heard it');
      // another gateway (same project) and an unknown uuid: ignored, the report still counts
      assert.equal(
        (await f.b.link.report({ dependent_devices: { [uuid]: { status: 'Hijacked', is_online: false }, ['ef'.repeat(16)]: { status: 'x' } } })).status,
        204,
      );
      assert.equal((await f.c.link.report({ dependent_devices: { [uuid]: { commit: 'evil' } } })).status, 204);
      const untouched = await shown();
      assert.deepEqual([untouched.status, untouched.commit, untouched.is_online], ['Idle', 'abc123', true]);
      const bad = await f.a.link.report({ dependent_devices: { [uuid]: { download_progress: 101 } } });
      assert.equal(bad.status, 400);
      assert.match(bad.body, new RegExp(`/dependent_devices/${uuid}/download_progress`));
    });

    // …another gateway's lines for it are skipped
    test("log lines with dependent_uuid are that device's, read and tailed apart from the gateway's own", async (t) => {
      const server = await backend.start(t);
      const f = await fleet(server);
      const uuid = String((await f.a.provision({ app_id: f.app })).body.uuid);
      const up = await f.a.logs([
        { message: 'gateway line', stream: 'system' },
        { message: 'detected movement', dependent_uuid: uuid },
      ]);
      assert.deepEqual(up.body, { last_seq: 2, stored: 2, duplicates: 0, suppressed: 0 });
      const read = async (query = '') => (await f.call('GET', `/dependent-devices/${uuid}/logs/${query}`)).body.map((l) => l.message);
      assert.deepEqual(await read(), ['detected movement']);
      assert.deepEqual(
        (await f.call('GET', `/dongle/devices/${f.a.id}/logs/`)).body.map((l) => l.message),
        ['gateway line'],
        "the gateway's own lines only",
      );
      // another gateway cannot write its lines: acknowledged (so its queue moves on), not stored
      for (const other of [f.b, f.c]) {
        const forged = await other.logs([{ message: 'forged', dependent_uuid: uuid }, { message: `${other.id} own` }]);
        assert.deepEqual(forged.body, { last_seq: 2, stored: 1, duplicates: 0, suppressed: 0 });
      }
      assert.deepEqual(await read(), ['detected movement']);
      // a live tail: the backlog, then a new line as it arrives (its own connection, closed with it)
      let text = '';
      const req = http.get(`${f.base}/dependent-devices/${uuid}/logs/tail/?limit=5`, {
        agent: false,
        headers: { authorization: `APIToken ${server.firstAdminToken}` },
      });
      t.after(() => req.destroy());
      const res = await new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
      assert.equal(res.statusCode, 200);
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      const readUntil = (needle: string) => until(`"${needle}" in the tail`, () => text.includes(needle));
      await readUntil('detected movement');
      await f.a.logs([{ message: 'gateway again' }, { message: 'battery low', dependent_uuid: uuid }], 3);
      await readUntil('battery low');
      assert.doesNotMatch(text, /gateway again|forged/);
      req.destroy();
      // deleted: its lines go with it
      assert.equal((await f.call('DELETE', `/dependent-devices/${uuid}`)).status, 204);
      assert.equal((await f.call('GET', `/dependent-devices/${uuid}/logs/`)).status, 404);
      const left = await server.db.selectFrom('device_log').select('message').where('dependent_uuid', '=', uuid).execute();
      assert.deepEqual(left, []);
    });
  });
}
