// The PostgreSQL test set-up (scripts/postgres.sh) through kysely and pg, as the server uses them:
// a throw-away database per test file, transactions, and LISTEN/NOTIFY between two connections
// (how a server node wakes the devices long-polling on other nodes).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Kysely, PostgresDialect, sql, type Generated } from 'kysely';
import pg from 'pg';

const url = process.env.BOSUN_TEST_DATABASE_URL;
const skip = url ? false : 'BOSUN_TEST_DATABASE_URL is not set (scripts/test.sh sets it with scripts/postgres.sh up)';

interface Db {
  items: { id: Generated<number>; name: string; created_at: Generated<Date> };
}

// `drop database … with (force)` ends connections still open to it: an idle one's error is expected
const quietPool = (connectionString: string) => new pg.Pool({ connectionString, max: 4 }).on('error', () => undefined);
const connect = <T>(connectionString: string) => new Kysely<T>({ dialect: new PostgresDialect({ pool: quietPool(connectionString) }) });

const dbName = `bosun_t_${randomBytes(6).toString('hex')}`;
let admin: Kysely<unknown> | undefined;
let db: Kysely<Db> | undefined;
let dbUrl = '';

before(async () => {
  if (!url) return;
  admin = connect<unknown>(url);
  await sql`create database ${sql.id(dbName)}`.execute(admin);
  const u = new URL(url);
  u.pathname = `/${dbName}`;
  dbUrl = u.toString();
  db = connect<Db>(dbUrl);
});

after(async () => {
  await db?.destroy();
  if (admin) {
    await sql`drop database if exists ${sql.id(dbName)} with (force)`.execute(admin);
    await admin.destroy();
  }
});

test('a throw-away database: create a table, insert and select in a transaction', { skip }, async () => {
  assert.ok(db);
  const { rows } = await sql<{ db: string; user: string }>`select current_database() as db, current_user as "user"`.execute(db);
  assert.deepEqual(rows, [{ db: dbName, user: new URL(url!).username }]);

  await db.schema
    .createTable('items')
    .addColumn('id', 'serial', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  const inTx = await db.transaction().execute(async (tx) => {
    const { id } = await tx.insertInto('items').values({ name: 'first' }).returning('id').executeTakeFirstOrThrow();
    await tx.insertInto('items').values({ name: 'second' }).execute();
    return tx.selectFrom('items').select(['id', 'name']).where('id', '=', id).executeTakeFirstOrThrow();
  });
  assert.equal(inTx.name, 'first');

  // a failing transaction leaves nothing behind
  await assert.rejects(
    db.transaction().execute(async (tx) => {
      await tx.insertInto('items').values({ name: 'third' }).execute();
      await tx.insertInto('items').values({ name: 'first' }).execute(); // unique violation
    }),
    (err: unknown) => (err as { code?: string }).code === '23505',
  );
  const all = await db.selectFrom('items').select(['name', 'created_at']).orderBy('id').execute();
  assert.deepEqual(
    all.map((r) => r.name),
    ['first', 'second'],
  );
  assert.ok(all[0]!.created_at instanceof Date);
});

test('LISTEN/NOTIFY between two connections: delivered on commit, not on rollback', { skip }, async (t) => {
  assert.ok(db);
  const listener = new pg.Client({ connectionString: dbUrl }).on('error', () => undefined);
  await listener.connect();
  t.after(() => listener.end());
  const received: { channel: string; payload: string | undefined; at: number }[] = [];
  const waiters: (() => void)[] = [];
  listener.on('notification', (n) => {
    received.push({ channel: n.channel, payload: n.payload, at: performance.now() });
    for (const w of waiters.splice(0)) w();
  });
  const next = (count: number, ms: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no notification within ${ms} ms (got ${received.length})`)), ms);
      const check = () => (received.length >= count ? (clearTimeout(timer), resolve()) : waiters.push(check));
      check();
    });
  await listener.query('LISTEN "bosun.target"');

  // the notifying side is kysely's pool: another connection
  const sent = performance.now();
  await sql`select pg_notify('bosun.target', ${'device-1'})`.execute(db);
  await next(1, 2000);
  assert.deepEqual(
    received.map((r) => [r.channel, r.payload]),
    [['bosun.target', 'device-1']],
  );
  assert.ok(received[0]!.at - sent < 1000, `notified after ${received[0]!.at - sent} ms`);

  // in a transaction: nothing until it commits; a rolled-back one never notifies
  await assert.rejects(
    db.transaction().execute(async (tx) => {
      await sql`select pg_notify('bosun.target', 'rolled-back')`.execute(tx);
      throw new Error('abort');
    }),
    /abort/,
  );
  await db.transaction().execute(async (tx) => {
    await sql`notify "bosun.target", 'committed'`.execute(tx);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(received.length, 1, 'a notification was delivered before its transaction committed');
  });
  await next(2, 2000);
  assert.deepEqual(
    received.map((r) => r.payload),
    ['device-1', 'committed'],
  );

  // UNLISTEN stops delivery
  await listener.query('UNLISTEN "bosun.target"');
  await sql`select pg_notify('bosun.target', 'after-unlisten')`.execute(db);
  await sql`select pg_notify('bosun.other', 'x')`.execute(db);
  await listener.query('select 1'); // a round trip after the notifications were sent
  assert.equal(received.length, 2);
});
