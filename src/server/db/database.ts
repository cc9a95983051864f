// The server's database through kysely: an SQLite file by default (embedded, nothing to set up),
// PostgreSQL when given a postgres:// URL (several server nodes on one database). Migrated on open.
import type { Generated } from 'kysely';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import { serverMigrations } from './migrations.js';

export interface ServerTables {
  api_token: { id: Generated<number>; name: string; token_hash: string; created_at: string; expires_at: string | null; revoked_at: string | null };
  registry: { id: Generated<number>; url: string; username: string; password_sealed: string; created_at: string };
  device: { id: string; unit_id: string; device_type: string; created_at: string };
  project: { id: Generated<number>; name: string; description: string; default_registry_id: number | null; created_at: string };
  project_device: { project_id: number; device_id: string };
}

export type ServerDb = Kysely<ServerTables>;

export interface DatabaseOptions {
  /** `postgres://…` for PostgreSQL; otherwise the SQLite file */
  url?: string;
  sqliteFile: string;
}

export async function openServerDb(opts: DatabaseOptions): Promise<ServerDb> {
  const postgres = isPostgresUrl(opts.url);
  const db = new Kysely<ServerTables>({ dialect: await dialectFor(opts) });
  const migrations = serverMigrations(postgres ? 'postgres' : 'sqlite');
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error } = await migrator.migrateToLatest();
  if (error) {
    await db.destroy();
    throw error instanceof Error ? error : new Error(String(error));
  }
  return db;
}

export const isPostgresUrl = (url: string | undefined): url is string => !!url && /^postgres(ql)?:\/\//.test(url);

async function dialectFor(opts: DatabaseOptions) {
  if (isPostgresUrl(opts.url)) {
    const { default: pg } = await import('pg');
    return new PostgresDialect({ pool: new pg.Pool({ connectionString: opts.url, max: 10 }) });
  }
  const { default: SQLite } = await import('better-sqlite3');
  const sqlite = new SQLite(opts.sqliteFile);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  return new SqliteDialect({ database: sqlite });
}

export const nowIso = () => new Date().toISOString();
