// The server's database through kysely: an SQLite file by default (embedded, nothing to set up),
// PostgreSQL when given a postgres:// URL (several server nodes on one database). Migrated on open.
import type { ColumnType, Generated } from 'kysely';
import type { LogStream } from '../../shared/deviceLogs.js';
import type { DeploymentState } from '../deployments/stateMachine.js';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import { serverMigrations } from './migrations.js';

export interface ServerTables {
  api_token: { id: Generated<number>; name: string; token_hash: string; created_at: string; expires_at: string | null; revoked_at: string | null };
  registry: { id: Generated<number>; url: string; username: string; password_sealed: string; created_at: string };
  provisioning_key: { id: Generated<number>; name: string; key_hash: string; project_id: number | null; created_at: string; revoked_at: string | null };
  device: {
    id: string;
    unit_id: string;
    device_type: string;
    name: string;
    device_key_hash: string;
    created_at: string;
    last_seen_at: string | null;
    agent_version: string | null;
    state_json: string | null;
    // migration 0005_sealed_targets
    /** the provisioning key it registered with: a repeat of its registration must use the same one */
    provisioning_key_id: number | null;
    /** when its device key was first used; until then a repeat of its registration may replace the key */
    key_used_at: string | null;
    /** why its latest target could not be built (it keeps the last one it had); null when it could */
    target_error: string | null;
  };
  project: { id: Generated<number>; name: string; description: string; default_registry_id: number | null; created_at: string };
  project_device: { project_id: number; device_id: string };
  release: { id: Generated<number>; project_id: number; version: string; version_hash: string; remove_containers: string; created_at: string };
  release_container: {
    id: Generated<number>;
    release_id: number;
    position: number;
    name: string;
    image: string;
    tag: string;
    required_tags: string;
    startup_parameters: string;
    purge_data: number;
    registry_id: number | null;
  };
  release_device: { release_id: number; device_id: string };
  deployment: {
    id: Generated<number>;
    release_id: number;
    device_id: string;
    state: DeploymentState;
    error: string | null;
    created_at: string;
    updated_at: string;
    finished_at: string | null;
  };
  /** `target_json` keeps registry passwords sealed (deviceTargets.ts); they are opened only to serve the target */
  device_target: { device_id: string; etag: string; target_json: string; updated_at: string };
  device_command: {
    id: Generated<number>;
    device_id: string;
    kind: 'supervisor' | 'execute';
    payload: string;
    state: 'pending' | 'delivered' | 'done' | 'failed' | 'expired';
    result: string | null;
    created_at: string;
    delivered_at: string | null;
    finished_at: string | null;
    expires_at: string;
  };
  // remote executions (migration 0004_command_jobs)
  command_job: {
    jid: string;
    command_id: number;
    callback_url: string | null;
    callback_next_at: string | null;
    callback_attempts: number;
    callback_delivered_at: string | null;
    callback_error: string | null;
  };
  server_secret: { name: string; sealed: string; created_at: string };
  // the telemetry logbook (migration 0002_telemetry); times in µs since the epoch (PostgreSQL's bigints arrive as strings)
  telemetry_series: { id: Generated<number>; device_id: string; field: string; type: string };
  telemetry_point: { series_id: number; ts: number | string; num: number | null; str: string | null; lat: number | null; lon: number | null };
  telemetry_minute: {
    series_id: number;
    minute: number | string;
    n: number | string;
    vsum: number | null;
    vmin: number | null;
    vmax: number | null;
    min_ts: number | string;
    max_ts: number | string;
  };
  telemetry_batch: { device_id: string; batch: string; points: number; received_at: string };
  // device logs (migration 0003_device_logs; src/server/logs/); bigints arrive from PostgreSQL as strings
  device_log: {
    id: Generated<number | string>;
    device_id: string;
    /** when it was printed, by the device's clock */
    ts: string;
    received_at: string;
    stream: LogStream;
    app_id: number | null;
    service: string | null;
    release_id: number | null;
    message: string;
    /** a line of a dependent device of this (gateway) device (migration 0006_dependents) */
    dependent_uuid: string | null;
  };
  // dependent apps and devices behind a gateway (migration 0006_dependents)
  dependent_app: { id: Generated<number>; project_id: number; name: string; device_type: string; config: string; created_at: string };
  dependent_release: {
    id: Generated<number>;
    app_id: number;
    image: string;
    tag: string;
    registry_id: number | null;
    commit: string;
    version_hash: string;
    created_at: string;
  };
  dependent_device: {
    id: Generated<number>;
    uuid: string;
    app_id: number;
    gateway_id: string;
    name: string;
    note: string | null;
    device_type: string;
    pinned_commit: string | null;
    target_environment: string;
    target_config: string;
    commit: string | null;
    status: string | null;
    is_online: number | null;
    download_progress: number | null;
    environment: string | null;
    config: string | null;
    last_seen: string | null;
    created_at: string;
  };
  dependent_tombstone: { uuid: string; gateway_id: string; deleted_at: string };
  device_log_state: {
    device_id: string;
    queue_id: string;
    last_seq: ColumnType<number | string, number, number>;
    lines: ColumnType<number | string, number, number>;
    tokens: number;
    tokens_at: string;
  };
}

export type ServerDb = Kysely<ServerTables>;

export interface DatabaseOptions {
  /** `postgres://…` for PostgreSQL; otherwise the SQLite file */
  url?: string;
  sqliteFile: string;
  /** PostgreSQL: an idle pooled connection was ended by the database (logged; the pool recovers) */
  onIdleConnectionError?: (err: Error) => void;
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
    const pool = new pg.Pool({ connectionString: opts.url, max: 10 });
    // An idle pooled connection that the database ends (a restart, an administrator, a dropped
    // database) is already out of the pool when this fires; the next query opens a new one.
    // Without a listener the pool re-emits it as an uncaught exception that would end the process.
    pool.on('error', (err) => opts.onIdleConnectionError?.(err));
    return new PostgresDialect({ pool });
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

/**
 * A long list in pieces small enough for one statement: SQLite takes at most 32766 bound values
 * per statement and PostgreSQL 65535, and a release may name thousands of devices.
 */
export function inChunks<T>(list: readonly T[], size = 1000): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}
