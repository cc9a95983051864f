// The agent's SQLite database (better-sqlite3 through kysely), migrated on open.
// WAL + synchronous=NORMAL: a crash loses at most the last transaction, never a torn one.
import fs from 'node:fs';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect, type Generated } from 'kysely';
import { migrationNames } from './migrations.js';

export interface AgentTables {
  config: { key: string; value: string };
  target_state: { id: number; source: string; json: string; updated_at: string };
  applied_release: { app_id: number; release_id: number; commit: string; applied_at: string };
  tracked_image: { ref: string; app_id: number; service_name: string; pulled_at: string };
  stopped_container: { container_id: string; stopped_at: string };
  event: { id: Generated<number>; ts: string; level: string; message: string };
  initial_containers: { app_id: number; release_id: number; phase: string; names: string };
  purged_data: { app_id: number; service_name: string; release_id: number };
  telemetry_point: { id: Generated<number>; batch: string | null; size: number; point: string };
  log_queue: { seq: Generated<number>; line: string; bytes: number; dropped: number };
  log_stream_cursor: { container_id: string; stream: 'stdout' | 'stderr'; ts: string };
  dependent_device: {
    id: Generated<number>;
    uuid: string;
    server_id: number | null;
    app_id: number;
    name: string;
    device_type: string;
    note: string | null;
    logs_channel: string;
    seen: number;
    state: string;
    target: string | null;
    hooked: string | null;
    reported: string | null;
    refused: string | null;
  };
  dependent_hook: { uuid: string; kind: string; body: string | null; attempts: number; due_at: number };
  dependent_release: { app_id: number; commit: string; image: string; seen_at: string };
}

export type AgentDb = Kysely<AgentTables>;

/** How to run a process that migrates a database file: `[...args, '--migrate-database', file]`. */
export interface MigrationProcess {
  execPath: string;
  args: string[];
}

/**
 * With `migrateIn`, pending migrations run in a child process (a device's first start, an upgrade):
 * kysely's Migrator and schema builders stay out of the long-running agent (~1 MB of RSS for good,
 * BENCHMARKS.md §3). Without it they run here.
 */
export async function openAgentDb(file: string, migrateIn?: MigrationProcess): Promise<AgentDb> {
  ownerOnly(file);
  let sqlite = new SQLite(file);
  if (migrateIn && !isMigrated(sqlite)) {
    sqlite.close();
    await migrateInChild(file, migrateIn);
    sqlite = new SQLite(file);
  }
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('synchronous = NORMAL');
  sqlite.pragma('busy_timeout = 5000');
  const db = new Kysely<AgentTables>({ dialect: new SqliteDialect({ database: sqlite }) });
  // Nearly every start finds the schema current: kysely's Migrator (and the migrations' schema
  // building) is loaded only when something is left to apply, or anything looks unusual.
  if (!isMigrated(sqlite)) {
    const { migrateToLatest } = await import('./migrate.js');
    const error = await migrateToLatest(db);
    if (error) {
      await db.destroy();
      throw error;
    }
  }
  return db;
}

/**
 * The database holds API keys and registry passwords: owner-only (0600), a file an older version
 * (or the umask) left wider included. SQLite gives the WAL, shared-memory and journal files it
 * creates the database file's mode; existing ones are narrowed here too.
 */
function ownerOnly(file: string): void {
  fs.closeSync(fs.openSync(file, 'a', 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) {
    try {
      fs.chmodSync(f, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** Applies pending migrations to the file and closes it (the `--migrate-database` child). */
export async function migrateDatabaseFile(file: string): Promise<void> {
  await (await openAgentDb(file)).destroy();
}

async function migrateInChild(file: string, how: MigrationProcess): Promise<void> {
  const { execFile } = await import('node:child_process');
  await new Promise<void>((resolve, reject) => {
    execFile(how.execPath, [...how.args, '--migrate-database', file], { timeout: 120_000 }, (err, _stdout, stderr) =>
      err ? reject(new Error(`migrating ${file} failed: ${stderr.trim() || err.message}`)) : resolve(),
    );
  });
}

/**
 * True when kysely's Migrator would find nothing to do: its tables and lock row exist and the
 * executed migrations are exactly ours. Anything else (fresh file, pending or unknown migrations)
 * goes through the Migrator, which applies or reports it as before.
 */
function isMigrated(sqlite: SQLite.Database): boolean {
  const tables = sqlite.prepare("select name from sqlite_master where type = 'table' and name in ('kysely_migration', 'kysely_migration_lock')").pluck().all();
  if (tables.length !== 2) return false;
  if (!sqlite.prepare("select 1 from kysely_migration_lock where id = 'migration_lock'").get()) return false;
  const executed = sqlite.prepare('select name from kysely_migration order by name').pluck().all() as string[];
  const ours = [...migrationNames].sort();
  return executed.length === ours.length && executed.every((name, i) => name === ours[i]);
}
