// The server's storage backends under test: SQLite always, PostgreSQL when scripts/postgres.sh (run
// by scripts/test.sh) provides BOSUN_TEST_DATABASE_URL. Each test gets a fresh database.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { openServer, type Server } from '../../src/server/server.js';

export interface Backend {
  name: 'sqlite' | 'postgres';
  /** a server on a fresh database, closed (and the database dropped) when the test ends */
  start(t: TestContext): Promise<Server>;
}

/** A new database on the test cluster, and how to drop it (after every connection to it closed). */
async function freshPostgres(adminUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const { default: pg } = await import('pg');
  const name = `bosun_t_${randomBytes(6).toString('hex')}`;
  const admin = async (query: string) => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(query).finally(() => c.end());
  };
  await admin(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`drop database if exists ${name} with (force)`) };
}

export function backends(): Backend[] {
  const list: Backend[] = [
    {
      name: 'sqlite',
      async start(t) {
        const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-server-'));
        const server = await openServer({ dataDir });
        t.after(async () => {
          await server.close();
          await fs.rm(dataDir, { recursive: true, force: true });
        });
        return server;
      },
    },
  ];
  const pgUrl = process.env.BOSUN_TEST_DATABASE_URL;
  if (pgUrl) {
    list.push({
      name: 'postgres',
      async start(t) {
        const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-server-'));
        const database = await freshPostgres(pgUrl);
        const server = await openServer({ dataDir, databaseUrl: database.url });
        t.after(async () => {
          await server.close();
          await database.drop();
          await fs.rm(dataDir, { recursive: true, force: true });
        });
        return server;
      },
    });
  }
  return list;
}
