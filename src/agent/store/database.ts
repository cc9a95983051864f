// The agent's SQLite database (better-sqlite3 through kysely), migrated on open.
// WAL + synchronous=NORMAL: a crash loses at most the last transaction, never a torn one.
import SQLite from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, type Generated, type Migration } from 'kysely';
import { migrations } from './migrations.js';

export interface AgentTables {
  config: { key: string; value: string };
  target_state: { id: number; source: string; json: string; updated_at: string };
  applied_release: { app_id: number; release_id: number; commit: string; applied_at: string };
  tracked_image: { ref: string; app_id: number; service_name: string; pulled_at: string };
  stopped_container: { container_id: string; stopped_at: string };
  event: { id: Generated<number>; ts: string; level: string; message: string };
}

export type AgentDb = Kysely<AgentTables>;

export async function openAgentDb(file: string): Promise<AgentDb> {
  const sqlite = new SQLite(file);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  const db = new Kysely<AgentTables>({ dialect: new SqliteDialect({ database: sqlite }) });
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations as Record<string, Migration> },
  });
  const { error } = await migrator.migrateToLatest();
  if (error) {
    await db.destroy();
    throw error instanceof Error ? error : new Error(String(error));
  }
  return db;
}
