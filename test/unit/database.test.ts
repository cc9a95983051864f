// The agent database: migrated by kysely's Migrator on a fresh or outdated file; a current one is
// opened without loading the Migrator; anything unusual still goes through the Migrator's checks.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import SQLite from 'better-sqlite3';
import { openAgentDb } from '../../src/agent/store/database.js';
import { migrationNames } from '../../src/agent/store/migrations.js';

async function tempDb(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-db-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'agent.sqlite');
}

const executed = (file: string) => {
  const sqlite = new SQLite(file, { readonly: true });
  try {
    return sqlite.prepare('select name from kysely_migration order by name').pluck().all();
  } finally {
    sqlite.close();
  }
};

test('a fresh file gets every migration, and reopening it changes nothing', async (t) => {
  const file = await tempDb(t);
  const db = await openAgentDb(file);
  await db.insertInto('config').values({ key: 'k', value: 'v' }).execute();
  await db.destroy();
  assert.deepEqual(executed(file), [...migrationNames].sort());
  const again = await openAgentDb(file);
  assert.deepEqual(await again.selectFrom('config').selectAll().execute(), [{ key: 'k', value: 'v' }]);
  await again.destroy();
  assert.deepEqual(executed(file), [...migrationNames].sort());
});

test('an executed migration the agent does not know is refused, as the Migrator does', async (t) => {
  const file = await tempDb(t);
  await (await openAgentDb(file)).destroy();
  const sqlite = new SQLite(file);
  sqlite.prepare("insert into kysely_migration (name, timestamp) values ('9999_from_the_future', '2030-01-01T00:00:00.000Z')").run();
  sqlite.close();
  await assert.rejects(openAgentDb(file), /corrupted migrations/);
});

test('a pending migration is applied (a file whose record of migrations was lost is migrated again)', async (t) => {
  const file = await tempDb(t);
  await (await openAgentDb(file)).destroy();
  const sqlite = new SQLite(file);
  sqlite.exec('delete from kysely_migration');
  sqlite.close();
  // the Migrator runs 0001 again, which fails on the existing tables: not silently skipped
  await assert.rejects(openAgentDb(file), /already exists/);
});

test('migrations can run in a child process (the agent itself with --migrate-database); its failure is reported', async (t) => {
  const file = await tempDb(t);
  const agentItself = { execPath: process.execPath, args: ['--import', 'tsx', 'src/agent/main.ts'] };
  const db = await openAgentDb(file, agentItself);
  await db.destroy();
  assert.deepEqual(executed(file), [...migrationNames].sort());
  // already current: no child runs (a failing one would throw)
  await (await openAgentDb(file, { execPath: process.execPath, args: ['-e', 'process.exit(3)', '--'] })).destroy();

  const fresh = await tempDb(t);
  await assert.rejects(
    openAgentDb(fresh, { execPath: process.execPath, args: ['-e', "console.error('disk full'); process.exit(1)", '--'] }),
    /migrating .* failed: disk full/,
  );
});

test('it holds keys and passwords: the file and its WAL and shared-memory files are 0600, also when they were wider', async (t) => {
  const file = await tempDb(t);
  const mode = async (f: string) => (await fs.stat(f)).mode & 0o777;
  const umask = process.umask(0o022);
  t.after(() => process.umask(umask));
  const db = await openAgentDb(file);
  await db.insertInto('config').values({ key: 'k', value: 'v' }).execute();
  for (const f of [file, `${file}-wal`, `${file}-shm`]) assert.equal(await mode(f), 0o600, f);
  await db.destroy();

  // an older agent's files, as its umask left them; a WAL left by a crash included
  await fs.writeFile(`${file}-wal`, '');
  for (const f of [file, `${file}-wal`]) await fs.chmod(f, 0o644);
  const again = await openAgentDb(file);
  for (const f of [file, `${file}-wal`, `${file}-shm`]) assert.equal(await mode(f), 0o600, f);
  await again.destroy();
});

test("0007: a container's log cursor of before becomes both streams' cursor (nothing is sent twice)", async (t) => {
  const file = await tempDb(t);
  await (await openAgentDb(file)).destroy();
  // the file as 0006 left it, with one cursor
  const sqlite = new SQLite(file);
  sqlite.exec(`drop table log_stream_cursor; create table log_cursor (container_id text primary key, ts text not null);
    insert into log_cursor values ('c1', '2024-05-01T10:00:03.000000000Z');
    delete from kysely_migration where name = '0007_log_stream_cursor'`);
  sqlite.close();
  const db = await openAgentDb(file);
  t.after(() => db.destroy());
  assert.deepEqual(await db.selectFrom('log_stream_cursor').selectAll().orderBy('stream').execute(), [
    { container_id: 'c1', stream: 'stderr', ts: '2024-05-01T10:00:03.000000000Z' },
    { container_id: 'c1', stream: 'stdout', ts: '2024-05-01T10:00:03.000000000Z' },
  ]);
  assert.deepEqual(executed(file), [...migrationNames].sort());
});
