// Registry passwords are sealed at rest: the server, run as an operator runs it, is given private
// registries, a device, releases that pull through them, a password change; the device gets the
// right credentials (the ETag stable between serves, new when the credentials change). Then every
// column of every table — and, on SQLite, the database files byte by byte — and everything the
// server printed are searched for each password, in clear, hex and base64 (at every alignment).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import SQLite from 'better-sqlite3';
import type { ServerTables } from '../../src/server/db/database.js';
import { serverMigrations } from '../../src/server/db/migrations.js';
import { openServer } from '../../src/server/server.js';
import { freshPostgres } from './backends.js';
import { hex } from './helpers.js';
import { startServerProcess } from './serverProcess.js';

/** The ways a secret's bytes can sit in a database or a log: as they are, hex, base64 and base64url at any offset. */
export function leakForms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const forms = new Set([secret, bytes.toString('hex'), bytes.toString('hex').toUpperCase()]);
  for (let offset = 0; offset < 3; offset++) {
    const shifted = Buffer.concat([Buffer.alloc(offset), bytes]);
    // only the characters that come from the secret's bytes alone: whole groups of three
    const from = offset ? 4 : 0;
    const to = Math.floor(shifted.length / 3) * 4;
    for (const encoding of ['base64', 'base64url'] as const) forms.add(shifted.toString(encoding).slice(from, to));
  }
  return [...forms];
}

function assertNoLeak(where: string, haystack: string | Buffer, secrets: string[]): void {
  for (const secret of secrets) {
    for (const form of leakForms(secret)) {
      const found = typeof haystack === 'string' ? haystack.includes(form) : haystack.indexOf(Buffer.from(form, 'utf8')) >= 0;
      assert.ok(!found, `${where} holds a form of a registry password (${form})`);
    }
  }
}

/** Every value of every table of an SQLite database, and its files' bytes. */
async function assertSqliteClean(dataDir: string, secrets: string[]): Promise<number> {
  const db = new SQLite(path.join(dataDir, 'server.sqlite'), { readonly: true });
  let values = 0;
  try {
    const tables = db.prepare(`select name from sqlite_master where type = 'table'`).all() as { name: string }[];
    for (const { name } of tables) {
      for (const row of db.prepare(`select * from "${name}"`).all() as Record<string, unknown>[]) {
        for (const [column, value] of Object.entries(row)) {
          if (typeof value === 'string' || Buffer.isBuffer(value)) {
            assertNoLeak(`${name}.${column}`, value, secrets);
            values++;
          }
        }
      }
    }
  } finally {
    db.close();
  }
  for (const file of await fs.readdir(dataDir)) {
    if (file.startsWith('server.sqlite')) assertNoLeak(`the file ${file}`, await fs.readFile(path.join(dataDir, file)), secrets);
  }
  return values;
}

/** Every row of every table of a PostgreSQL database, as text (bytea shows as hex). */
async function assertPostgresClean(url: string, secrets: string[]): Promise<number> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  let rows = 0;
  try {
    const tables = await client.query<{ tablename: string }>(`select tablename from pg_tables where schemaname = 'public'`);
    for (const { tablename } of tables.rows) {
      for (const { row } of (await client.query<{ row: string }>(`select t::text as row from "${tablename}" t`)).rows) {
        assertNoLeak(`a row of ${tablename}`, row, secrets);
        rows++;
      }
    }
  } finally {
    await client.end();
  }
  return rows;
}

async function tempDir(t: TestContext): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-secrets-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

const backendNames = process.env.BOSUN_TEST_DATABASE_URL ? (['sqlite', 'postgres'] as const) : (['sqlite'] as const);

for (const backend of backendNames) {
  describe(`registry passwords at rest on ${backend}`, () => {
    // (after releases through private registries, a device poll and a password change)
    test('no table, file or log line holds a registry password; the device gets them', async (t) => {
      const dataDir = await tempDir(t);
      const database = backend === 'postgres' ? await freshPostgres() : undefined;
      if (database) t.after(() => database.drop());
      const server = await startServerProcess(t, ['--data-dir', dataDir, '--port', '0', ...(database ? ['--database-url', database.url] : [])]);
      const api = async (method: string, url: string, body?: unknown, auth = `APIToken ${server.token}`) => {
        const res = await fetch(`${server.url}${url}`, {
          method,
          headers: { authorization: auth, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        const text = await res.text();
        return { status: res.status, etag: res.headers.get('etag'), body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
      };
      // (no quote or backslash: JSON would escape them, and the search would look for the wrong bytes)
      const passwords = [`pw-${hex(12)}-Zürich`, `pw-${hex(12)}-second`, `pw-${hex(12)}-changed`];
      const [first, second, changed] = passwords as [string, string, string];

      const r1 = await api('POST', '/docker/registries/', { url: 'registry.example.com:5000', username: 'fleet-bot', password: first });
      assert.equal(r1.status, 201);
      const r2 = await api('POST', '/docker/registries/', { url: 'https://other.example.org', username: 'api-bot', password: second });
      assert.equal(r2.status, 201);
      // a refused write is no way for a password into the log either
      await api('POST', '/docker/registries/', { url: 'not a registry', username: 'x', password: first });
      const project = await api('POST', '/docker/projects/', { name: 'fleet', default_registry: r1.body.id });
      const provisioning = await api('POST', '/provisioning-keys/', { name: 'line', project: project.body.id });
      const registered = await api('POST', '/device/register', { uuid: hex(), device_type: 'generic-amd64' }, `Bearer ${provisioning.body.key}`);
      assert.equal(registered.status, 201);
      const releases = `/docker/projects/${project.body.id}/releases/`;
      const containers = [
        { name: 'web', image: 'acme/web', tag: '1' },
        { name: 'api', image: 'acme/api', tag: '1', registry: r2.body.id },
      ];
      assert.equal((await api('POST', releases, { version: '1.0.0', containers })).status, 201);
      assert.equal((await api('POST', releases, { version: '1.0.1', containers })).status, 201);

      const link = `Bearer ${registered.body.device_key}`;
      const got = await api('GET', '/device/v1/state', undefined, link);
      assert.equal(got.status, 200);
      assert.deepEqual(got.body.registries, {
        [`registry-${r1.body.id}`]: { url: 'registry.example.com:5000', username: 'fleet-bot', password: first },
        [`registry-${r2.body.id}`]: { url: 'https://other.example.org', username: 'api-bot', password: second },
      });
      assert.equal((await api('GET', '/device/v1/state', undefined, link)).etag, got.etag, 'the ETag is the same at every serve');
      const cached = await fetch(`${server.url}/device/v1/state`, { headers: { authorization: link, 'if-none-match': got.etag! } });
      assert.equal(cached.status, 304);

      assert.equal((await api('PATCH', `/docker/registries/${r1.body.id}/`, { password: changed })).status, 200);
      const after = await fetch(`${server.url}/device/v1/state`, { headers: { authorization: link, 'if-none-match': got.etag! } });
      assert.equal(after.status, 200, 'new credentials are a new target');
      assert.notEqual(after.headers.get('etag'), got.etag);
      const target = (await after.json()) as { registries: Record<string, { password: string }> };
      assert.equal(target.registries[`registry-${r1.body.id}`]!.password, changed);
      assert.equal(target.registries[`registry-${r2.body.id}`]!.password, second);
      const report = await api('PATCH', '/device/v1/state', { apps: { [String(project.body.id)]: { updateStatus: 'downloading' } } }, link);
      assert.equal(report.status, 204);
      await server.stop();

      const searched = database ? await assertPostgresClean(database.url, passwords) : await assertSqliteClean(dataDir, passwords);
      assert.ok(searched > 20, `only ${searched} values searched`);
      assertNoLeak('the server output', server.output(), passwords);
      assert.match(server.output(), /"url":"\/device\/v1\/state"/, 'the output searched is the request log');
    });

    test('targets stored by an earlier version, passwords in clear, are gone after the upgrade; the device gets its target again', async (t) => {
      const password = `pw-${hex(12)}-legacy`;
      const dataDir = await tempDir(t);
      const database = backend === 'postgres' ? await freshPostgres() : undefined;
      if (database) t.after(() => database.drop());
      // the schema before this change (migrations up to 0004), with a target as it was stored then
      const legacy = new Kysely<ServerTables>({
        dialect: database
          ? new PostgresDialect({ pool: new (await import('pg')).default.Pool({ connectionString: database.url }) })
          : new SqliteDialect({ database: new SQLite(path.join(dataDir, 'server.sqlite')) }),
      });
      const all = serverMigrations(backend);
      const before = Object.fromEntries(Object.entries(all).filter(([name]) => name < '0005'));
      const { error } = await new Migrator({ db: legacy, provider: { getMigrations: async () => before } }).migrateToLatest();
      assert.ifError(error);
      const now = new Date().toISOString();
      await legacy
        .insertInto('device')
        .values({ id: 'dev-1', unit_id: 'abcdef1', device_type: 'x', name: 'dev-1', device_key_hash: 'h', created_at: now })
        .execute();
      const clear = JSON.stringify({ apps: {}, name: 'dev-1', registries: { 'registry-1': { password, url: 'r.example.com', username: 'u' } } });
      await legacy
        .insertInto('device_target')
        .values({ device_id: 'dev-1', etag: 'e'.repeat(32), target_json: clear, updated_at: now })
        .execute();
      await legacy.destroy();

      const open = async () => {
        const saved = process.env.BOSUN_SERVER_KEY;
        process.env.BOSUN_SERVER_KEY = key;
        const server = await openServer({ dataDir, ...(database ? { databaseUrl: database.url } : {}) }).finally(() => {
          if (saved === undefined) delete process.env.BOSUN_SERVER_KEY;
          else process.env.BOSUN_SERVER_KEY = saved;
        });
        let closed: Promise<void> | undefined;
        const close = () => (closed ??= server.close());
        t.after(close);
        return { server, close };
      };
      const key = randomBytes(32).toString('base64');
      const upgraded = await open();
      assert.equal(await upgraded.server.targets.get('dev-1'), undefined, 'the stored target is gone');
      await upgraded.close();
      // (before the target is built again: its row would take the page the old one left)
      if (database) await assertPostgresClean(database.url, [password]);
      else await assertSqliteClean(dataDir, [password]);
      const again = await open();
      assert.deepEqual(await again.server.targets.refresh(['dev-1']), ['dev-1'], 'it is built again');
      await again.close();
    });
  });
}

test('leakForms: the password in clear, hex and base64 at each offset', () => {
  const forms = leakForms('secret-pw');
  for (const prefix of ['', 'u:', 'user:']) {
    const b64 = Buffer.from(`${prefix}secret-pw`).toString('base64');
    assert.ok(
      forms.some((f) => f.length >= 8 && b64.includes(f)),
      `base64 of "${prefix}secret-pw"`,
    );
  }
  assert.ok(forms.includes(Buffer.from('secret-pw').toString('hex')));
});
