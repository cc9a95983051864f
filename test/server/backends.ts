// The server's storage backends under test: SQLite always, PostgreSQL when scripts/postgres.sh (run
// by scripts/test.sh) provides BOSUN_TEST_DATABASE_URL. Each test gets a fresh database.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { openServer, type Server, type ServerOptions } from '../../src/server/server.js';

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** a server on a fresh database, closed (and the database dropped) when the test ends */
  start(t: TestContext, opts?: Omit<ServerOptions, 'dataDir' | 'databaseUrl'>): Promise<Server>;
}

/** A new database on the test cluster, and how to drop it (after every connection to it closed). */
export async function freshPostgres(adminUrl = process.env.BOSUN_TEST_DATABASE_URL!): Promise<{ url: string; drop(): Promise<void> }> {
  const { default: pg } = await import('pg');
  const name = `bosun_t_${randomBytes(6).toString('hex')}`;
  const admin = async (query: string) => {
    const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
    await c.connect();
    await c.query(query).finally(() => c.end());
  };
  await admin(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const drop = async (attempt = 0): Promise<void> => {
    try {
      await admin(`drop database if exists ${name} with (force)`);
    } catch (err) {
      // 42501: an autovacuum worker (no role) on it, which a forced drop may not terminate; it ends soon
      if ((err as { code?: string }).code !== '42501' || attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 250));
      await drop(attempt + 1);
    }
  };
  return { url: url.toString(), drop: () => drop() };
}

export function backends(): Backend[] {
  const names: Backend['name'][] = process.env.BOSUN_TEST_DATABASE_URL ? ['sqlite', 'postgres'] : ['sqlite'];
  return names.map((name) => ({
    name,
    async start(t, opts = {}) {
      const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-server-'));
      const database = name === 'postgres' ? await freshPostgres() : undefined;
      const server = await openServer({ ...opts, dataDir, ...(database ? { databaseUrl: database.url } : {}) });
      t.after(async () => {
        await server.close();
        await database?.drop();
        await fs.rm(dataDir, { recursive: true, force: true });
      });
      return server;
    },
  }));
}

/** `count` server nodes on one fresh database (SQLite: a single node), closed when the test ends. */
export async function nodes(t: TestContext, backend: Backend['name'], count: number): Promise<Server[]> {
  const dirs: string[] = [];
  const servers: Server[] = [];
  const database = backend === 'postgres' ? await freshPostgres() : undefined;
  t.after(async () => {
    for (const s of servers) await s.close().catch(() => {});
    await database?.drop();
    for (const d of dirs) await fs.rm(d, { recursive: true, force: true });
  });
  // the nodes share the server key, as a deployment of several nodes must
  const saved = process.env.BOSUN_SERVER_KEY;
  process.env.BOSUN_SERVER_KEY = randomBytes(32).toString('base64');
  try {
    for (let i = 0; i < count; i++) {
      const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-node-'));
      dirs.push(dir);
      servers.push(await openServer({ dataDir: dir, ...(database ? { databaseUrl: database.url } : {}) }));
    }
  } finally {
    if (saved === undefined) delete process.env.BOSUN_SERVER_KEY;
    else process.env.BOSUN_SERVER_KEY = saved;
  }
  // nodes after the first share the first one's admin token (the same database)
  for (const s of servers.slice(1)) Object.assign(s, { firstAdminToken: servers[0]!.firstAdminToken });
  return servers;
}
