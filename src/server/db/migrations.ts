// Schema migrations of the server database, the same for SQLite and PostgreSQL, applied in key
// order. Never edit one that shipped. Timestamps are ISO-8601 UTC text, so both engines compare
// and sort them alike.
import { sql, type Kysely, type Migration } from 'kysely';

export type SqlDialect = 'sqlite' | 'postgres';

export const serverMigrations = (dialect: SqlDialect): Record<string, Migration> => ({
  '0001_initial': {
    async up(db: Kysely<unknown>) {
      // an auto-incrementing integer primary key in either dialect
      const id = dialect === 'sqlite' ? 'integer' : 'serial';
      const table = (name: string) =>
        db.schema.createTable(name).addColumn('id', id, (c) => (id === 'integer' ? c.primaryKey().autoIncrement() : c.primaryKey()));
      await table('api_token')
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('revoked_at', 'text')
        .execute();
      await table('registry')
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('password_sealed', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      // A provisioning key lets new devices register: per project, or fleet-wide (no project).
      await table('provisioning_key')
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('key_hash', 'text', (c) => c.notNull().unique())
        .addColumn('project_id', 'integer')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .execute();
      // Devices register themselves (the device link). `id` is the server's, `unit_id` the uuid
      // the agent generated (config.json); the device key is stored as a digest.
      await db.schema
        .createTable('device')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('unit_id', 'text', (c) => c.notNull().unique())
        .addColumn('device_type', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('device_key_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_seen_at', 'text')
        .addColumn('agent_version', 'text')
        /** the last state the device reported (JSON) */
        .addColumn('state_json', 'text')
        .execute();
      await table('project')
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull())
        .addColumn('default_registry_id', 'integer', (c) => c.references('registry.id'))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('project_device')
        .addColumn('project_id', 'integer', (c) => c.notNull().references('project.id').onDelete('cascade'))
        .addColumn('device_id', 'text', (c) => c.notNull().references('device.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('project_device_pk', ['project_id', 'device_id'])
        .execute();
      // A release of a project: its containers, the devices it applies to, and per device a deployment.
      await table('release')
        .addColumn('project_id', 'integer', (c) => c.notNull().references('project.id').onDelete('cascade'))
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('version_hash', 'text', (c) => c.notNull().unique())
        /** JSON list of container names stopped before the deployment, removed when it succeeds */
        .addColumn('remove_containers', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await table('release_container')
        .addColumn('release_id', 'integer', (c) => c.notNull().references('release.id').onDelete('cascade'))
        .addColumn('position', 'integer', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('image', 'text', (c) => c.notNull())
        .addColumn('tag', 'text', (c) => c.notNull())
        /** JSON list of image tags that must also be on the device */
        .addColumn('required_tags', 'text', (c) => c.notNull())
        /** JSON object: environment, binds, port_bindings, network_mode, restart_policy, privileged, … */
        .addColumn('startup_parameters', 'text', (c) => c.notNull())
        .addColumn('purge_data', 'integer', (c) => c.notNull())
        .addColumn('registry_id', 'integer', (c) => c.references('registry.id'))
        .execute();
      await db.schema
        .createTable('release_device')
        .addColumn('release_id', 'integer', (c) => c.notNull().references('release.id').onDelete('cascade'))
        .addColumn('device_id', 'text', (c) => c.notNull().references('device.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('release_device_pk', ['release_id', 'device_id'])
        .execute();
      // a device's target is built from the releases that list it and the projects it is in
      await db.schema.createIndex('release_device_by_device').on('release_device').column('device_id').execute();
      await db.schema.createIndex('project_device_by_device').on('project_device').column('device_id').execute();
      await table('deployment')
        .addColumn('release_id', 'integer', (c) => c.notNull().references('release.id').onDelete('cascade'))
        .addColumn('device_id', 'text', (c) => c.notNull().references('device.id').onDelete('cascade'))
        /** pending | downloading | applying | succeeded | failed */
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('finished_at', 'text')
        .addUniqueConstraint('deployment_release_device', ['release_id', 'device_id'])
        .execute();
      // Each device's target state, kept up to date whenever what it depends on changes, so that a
      // device's poll is one indexed read and its ETag a stored digest.
      await db.schema
        .createTable('device_target')
        .addColumn('device_id', 'text', (c) => c.primaryKey().references('device.id').onDelete('cascade'))
        .addColumn('etag', 'text', (c) => c.notNull())
        .addColumn('target_json', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      // Commands queued for a device (supervisor proxy calls; remote executions later), delivered
      // through its command long poll and answered with a result it posts back. Kept for a
      // retention period once finished.
      await table('device_command')
        .addColumn('device_id', 'text', (c) => c.notNull().references('device.id').onDelete('cascade'))
        /** supervisor | execute */
        .addColumn('kind', 'text', (c) => c.notNull())
        /** JSON: what the device is asked to do */
        .addColumn('payload', 'text', (c) => c.notNull())
        /** pending | delivered | done | failed | expired */
        .addColumn('state', 'text', (c) => c.notNull())
        /** JSON: the device's answer (done) or why it could not run it (failed) */
        .addColumn('result', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('delivered_at', 'text')
        .addColumn('finished_at', 'text')
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('device_command_device_state').on('device_command').columns(['device_id', 'state']).execute();
    },
  },
  // The telemetry logbook (src/server/logbook/). A series is one field of one type on one device;
  // its points carry the time in microseconds since the epoch (UTC) and their value in the column
  // of its type. Per series and minute, the aggregates of its points (kept as points arrive), so
  // that bucketed reads sum minutes instead of scanning every point. Upload batches are recorded
  // per device so that a batch sent again (its answer was lost) is not stored twice.
  '0002_telemetry': {
    async up(db: Kysely<unknown>) {
      const id = dialect === 'sqlite' ? 'integer' : 'serial';
      await db.schema
        .createTable('telemetry_series')
        .addColumn('id', id, (c) => (id === 'integer' ? c.primaryKey().autoIncrement() : c.primaryKey()))
        .addColumn('device_id', 'text', (c) => c.notNull().references('device.id').onDelete('cascade'))
        .addColumn('field', 'text', (c) => c.notNull())
        /** float | int | bool | string | geo_point */
        .addColumn('type', 'text', (c) => c.notNull())
        .addUniqueConstraint('telemetry_series_key', ['device_id', 'field', 'type'])
        .execute();
      await db.schema
        .createTable('telemetry_point')
        .addColumn('series_id', 'integer', (c) => c.notNull())
        .addColumn('ts', 'bigint', (c) => c.notNull())
        /** float, int, bool (0/1) */
        .addColumn('num', 'double precision')
        .addColumn('str', 'text')
        .addColumn('lat', 'double precision')
        .addColumn('lon', 'double precision')
        .execute();
      await db.schema.createIndex('telemetry_point_series_ts').on('telemetry_point').columns(['series_id', 'ts']).execute();
      await db.schema
        .createTable('telemetry_minute')
        .addColumn('series_id', 'integer', (c) => c.notNull())
        /** the minute's start (µs) */
        .addColumn('minute', 'bigint', (c) => c.notNull())
        .addColumn('n', 'bigint', (c) => c.notNull())
        /** sum, min and max of the values: numeric series only */
        .addColumn('vsum', 'double precision')
        .addColumn('vmin', 'double precision')
        .addColumn('vmax', 'double precision')
        .addColumn('min_ts', 'bigint', (c) => c.notNull())
        .addColumn('max_ts', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('telemetry_minute_pk', ['series_id', 'minute'])
        .execute();
      // A series' points and minutes go with it (and so with its device). A trigger, not foreign
      // keys: PostgreSQL checks a foreign key row by row, which halves the rate points are stored at.
      const forget = sql.raw('delete from telemetry_point where series_id = old.id; delete from telemetry_minute where series_id = old.id;');
      if (dialect === 'sqlite') {
        await sql`create trigger telemetry_series_deleted after delete on telemetry_series begin ${forget} end`.execute(db);
      } else {
        await sql`create function telemetry_series_deleted() returns trigger language plpgsql as $$ begin ${forget} return old; end $$`.execute(db);
        await sql`create trigger telemetry_series_deleted after delete on telemetry_series for each row execute function telemetry_series_deleted()`.execute(
          db,
        );
      }
      await db.schema
        .createTable('telemetry_batch')
        .addColumn('device_id', 'text', (c) => c.notNull().references('device.id').onDelete('cascade'))
        .addColumn('batch', 'text', (c) => c.notNull())
        .addColumn('points', 'integer', (c) => c.notNull())
        .addColumn('received_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('telemetry_batch_pk', ['device_id', 'batch'])
        .execute();
    },
  },
  // Device logs (src/server/logs/): the lines devices upload, read per device in id order, pruned by
  // age of arrival and by count per device; per device, where its upload sequence stands, its line
  // count and its rate limit's token bucket.
  '0003_device_logs': {
    async up(db: Kysely<unknown>) {
      const id = dialect === 'sqlite' ? 'integer' : 'bigserial';
      await db.schema
        .createTable('device_log')
        .addColumn('id', id, (c) => (id === 'integer' ? c.primaryKey().autoIncrement() : c.primaryKey()))
        .addColumn('device_id', 'text', (c) => c.notNull().references('device.id').onDelete('cascade'))
        .addColumn('ts', 'text', (c) => c.notNull())
        .addColumn('received_at', 'text', (c) => c.notNull())
        /** stdout | stderr | system */
        .addColumn('stream', 'text', (c) => c.notNull())
        .addColumn('app_id', 'integer')
        .addColumn('service', 'text')
        .addColumn('release_id', 'integer')
        .addColumn('message', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('device_log_device_id').on('device_log').columns(['device_id', 'id']).execute();
      await db.schema.createIndex('device_log_received_at').on('device_log').column('received_at').execute();
      await db.schema
        .createTable('device_log_state')
        .addColumn('device_id', 'text', (c) => c.primaryKey().references('device.id').onDelete('cascade'))
        /** the agent's log queue the sequence numbers belong to */
        .addColumn('queue_id', 'text', (c) => c.notNull())
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .addColumn('lines', 'bigint', (c) => c.notNull())
        .addColumn('tokens', 'double precision', (c) => c.notNull())
        .addColumn('tokens_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
  // Remote executions (POST /dongle/devices/{id}/execute/): the job a user polls by its Salt-style
  // jid, its command a device_command of kind `execute`. A callback, when asked for, is delivered
  // from here by whichever server node claims it: `callback_next_at` is when its next attempt is due
  // (a claim moves it past the attempt's deadline), null once delivered or given up. The key that
  // signs callbacks is a server secret, sealed with the server key.
  '0004_command_jobs': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('command_job')
        .addColumn('jid', 'text', (c) => c.primaryKey())
        .addColumn('command_id', 'integer', (c) => c.notNull().unique().references('device_command.id').onDelete('cascade'))
        .addColumn('callback_url', 'text')
        .addColumn('callback_next_at', 'text')
        .addColumn('callback_attempts', 'integer', (c) => c.notNull())
        .addColumn('callback_delivered_at', 'text')
        .addColumn('callback_error', 'text')
        .execute();
      await db.schema.createIndex('command_job_callback_due').on('command_job').column('callback_next_at').execute();
      await db.schema
        .createTable('server_secret')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('sealed', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
  // Device targets keep registry passwords sealed (src/server/targets/deviceTargets.ts): the targets
  // stored by earlier versions held them in clear, so they go (each is rebuilt at its device's next
  // poll; on SQLite their pages are zeroed). A device's registration can be repeated with the same
  // provisioning key until its key is first used (src/server/routes/provisioning.ts); a device whose
  // target cannot be built says why.
  '0005_sealed_targets': {
    async up(db: Kysely<unknown>) {
      if (dialect === 'sqlite') await sql`pragma secure_delete = on`.execute(db);
      await sql`delete from device_target`.execute(db);
      if (dialect === 'sqlite') await sql`pragma secure_delete = off`.execute(db);
      await db.schema.alterTable('device').addColumn('provisioning_key_id', 'integer').execute();
      await db.schema.alterTable('device').addColumn('key_used_at', 'text').execute();
      await db.schema.alterTable('device').addColumn('target_error', 'text').execute();
    },
  },
  // Dependent apps and devices behind a gateway (src/server/services/dependentApps.ts, dependentDevices.ts,
  // targets/dependentTarget.ts): an app of a gateway project whose releases are images never run (their
  // commit is the image digest, or a version hash); a device provisioned by a gateway, what the operator
  // wants on it (a pinned commit, environment, config) and what its gateway last reported. A device's
  // log lines are its gateway's, marked with its uuid (logs/deviceLogs.ts).
  '0006_dependents': {
    async up(db: Kysely<unknown>) {
      const id = dialect === 'sqlite' ? 'integer' : 'serial';
      const table = (name: string) =>
        db.schema.createTable(name).addColumn('id', id, (c) => (id === 'integer' ? c.primaryKey().autoIncrement() : c.primaryKey()));
      await table('dependent_app')
        .addColumn('project_id', 'integer', (c) => c.notNull().references('project.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('device_type', 'text', (c) => c.notNull())
        /** JSON object of strings */
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('dependent_app_name', ['project_id', 'name'])
        .execute();
      await table('dependent_release')
        .addColumn('app_id', 'integer', (c) => c.notNull().references('dependent_app.id').onDelete('cascade'))
        .addColumn('image', 'text', (c) => c.notNull())
        .addColumn('tag', 'text', (c) => c.notNull())
        .addColumn('registry_id', 'integer', (c) => c.references('registry.id'))
        /** the image digest (sha256:…) when it was resolved, else the version hash */
        .addColumn('commit', 'text', (c) => c.notNull())
        .addColumn('version_hash', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('dependent_release_commit', ['app_id', 'commit'])
        .execute();
      await table('dependent_device')
        .addColumn('uuid', 'text', (c) => c.notNull().unique())
        .addColumn('app_id', 'integer', (c) => c.notNull().references('dependent_app.id').onDelete('cascade'))
        .addColumn('gateway_id', 'text', (c) => c.notNull().references('device.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('note', 'text')
        .addColumn('device_type', 'text', (c) => c.notNull())
        /** the commit it is pinned to; null: its app's newest */
        .addColumn('pinned_commit', 'text')
        /** JSON objects of strings: what the operator set */
        .addColumn('target_environment', 'text', (c) => c.notNull())
        .addColumn('target_config', 'text', (c) => c.notNull())
        // what its gateway last reported
        .addColumn('commit', 'text')
        .addColumn('status', 'text')
        .addColumn('is_online', 'integer')
        .addColumn('download_progress', 'double precision')
        .addColumn('environment', 'text')
        .addColumn('config', 'text')
        .addColumn('last_seen', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('dependent_device_by_gateway').on('dependent_device').column('gateway_id').execute();
      await db.schema.createIndex('dependent_device_by_app').on('dependent_device').column('app_id').execute();
      await db.schema.alterTable('device_log').addColumn('dependent_uuid', 'text').execute();
      await db.schema.createIndex('device_log_dependent').on('device_log').columns(['dependent_uuid', 'id']).execute();
    },
  },
  // A dependent device deleted on the control plane leaves a tombstone in its gateway's target
  // (`dependent.deleted`): a gateway that never saw it in a target (provisioned and deleted at once)
  // still learns that it is gone. The newest MAX_DEPENDENT_DEVICES of a gateway are kept.
  '0007_dependent_tombstones': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('dependent_tombstone')
        .addColumn('uuid', 'text', (c) => c.primaryKey())
        .addColumn('gateway_id', 'text', (c) => c.notNull().references('device.id').onDelete('cascade'))
        .addColumn('deleted_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('dependent_tombstone_by_gateway').on('dependent_tombstone').columns(['gateway_id', 'deleted_at']).execute();
    },
  },
});
