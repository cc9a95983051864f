// Schema migrations of the agent database, applied in key order. Never edit one that shipped.
import { sql, type Kysely, type Migration } from 'kysely';

export const migrations: Record<string, Migration> = {
  '0001_initial': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('config')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
      // One row: the target the agent converges on (id 1).
      await db.schema
        .createTable('target_state')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('source', 'text', (c) => c.notNull())
        .addColumn('json', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('applied_release')
        .addColumn('app_id', 'integer', (c) => c.primaryKey())
        .addColumn('release_id', 'integer', (c) => c.notNull())
        .addColumn('commit', 'text', (c) => c.notNull())
        .addColumn('applied_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('tracked_image')
        .addColumn('ref', 'text', (c) => c.primaryKey())
        .addColumn('app_id', 'integer', (c) => c.notNull())
        .addColumn('service_name', 'text', (c) => c.notNull())
        .addColumn('pulled_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('stopped_container')
        .addColumn('container_id', 'text', (c) => c.primaryKey())
        .addColumn('stopped_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('event')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('ts', 'text', (c) => c.notNull())
        .addColumn('level', 'text', (c) => c.notNull())
        .addColumn('message', 'text', (c) => c.notNull())
        .execute();
      await sql`create index event_ts on event (ts)`.execute(db);
    },
  },
  // AutoPi release semantics: remove_containers and purge_data.
  '0002_release_tasks': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('initial_containers')
        .addColumn('app_id', 'integer', (c) => c.primaryKey())
        .addColumn('release_id', 'integer', (c) => c.notNull())
        .addColumn('phase', 'text', (c) => c.notNull())
        .addColumn('names', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('purged_data')
        .addColumn('app_id', 'integer', (c) => c.notNull())
        .addColumn('service_name', 'text', (c) => c.notNull())
        .addColumn('release_id', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('purged_data_pk', ['app_id', 'service_name'])
        .execute();
    },
  },
  // Telemetry points waiting for the control plane (src/agent/telemetry/telemetryBuffer.ts), in the
  // order they came (AUTOINCREMENT: ids never reused). `batch` is set once a point is part of an
  // upload, so that a retry (also after a restart) sends the same batch under the same id.
  '0003_telemetry': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('telemetry_point')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('batch', 'text')
        /** bytes of `point`: the buffer is bounded by their sum */
        .addColumn('size', 'integer', (c) => c.notNull())
        /** the point as JSON ({field, type, value, ts}) */
        .addColumn('point', 'text', (c) => c.notNull())
        .execute();
      await sql`create index telemetry_point_batch on telemetry_point (batch) where batch is not null`.execute(db);
    },
  },
  // Device logs waiting for the control plane (cloud mode; src/agent/logs/logQueue.ts): the bounded
  // queue in order (`seq` is also the lines' sequence number on the wire, so AUTOINCREMENT: never
  // reused) and per container the engine time of its last line queued, where following resumes.
  '0004_log_queue': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('log_queue')
        .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('line', 'text', (c) => c.notNull())
        .addColumn('bytes', 'integer', (c) => c.notNull())
        /** on a marker line: how many lines it stands for (0 on any other line) */
        .addColumn('dropped', 'integer', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('log_cursor')
        .addColumn('container_id', 'text', (c) => c.primaryKey())
        .addColumn('ts', 'text', (c) => c.notNull())
        .execute();
    },
  },
  // Dependent devices behind this gateway (src/agent/dependent/): what the gateway app said of each
  // (PUT /v1/devices/:uuid), the target the control plane gave it, whether the control plane knows it
  // yet (provisioned offline: `server_id` null); the hooks still owed to the gateway app, per device
  // and kind, with their next attempt; and every dependent release seen (commit → image), so a device
  // pinned to an older commit keeps its image and assets.
  '0005_dependent': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('dependent_device')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('uuid', 'text', (c) => c.notNull().unique())
        .addColumn('server_id', 'integer')
        .addColumn('app_id', 'integer', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('device_type', 'text', (c) => c.notNull())
        .addColumn('note', 'text')
        .addColumn('logs_channel', 'text', (c) => c.notNull())
        /** 1 once a target of the control plane listed it: only then does its absence mean deleted */
        .addColumn('seen', 'integer', (c) => c.notNull())
        /** JSON of DependentDeviceReport: what the gateway app last said */
        .addColumn('state', 'text', (c) => c.notNull())
        /** JSON of its DependentDeviceTarget, null before a target listed it */
        .addColumn('target', 'text')
        /** JSON of {commit, environment} the last update hook was queued for */
        .addColumn('hooked', 'text')
        .execute();
      await db.schema
        .createTable('dependent_hook')
        .addColumn('uuid', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('body', 'text')
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('due_at', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('dependent_hook_pk', ['uuid', 'kind'])
        .execute();
      await db.schema
        .createTable('dependent_release')
        .addColumn('app_id', 'integer', (c) => c.notNull())
        .addColumn('commit', 'text', (c) => c.notNull())
        .addColumn('image', 'text', (c) => c.notNull())
        .addColumn('seen_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('dependent_release_pk', ['app_id', 'commit'])
        .execute();
    },
  },
  // A dependent device's state as the control plane last accepted it (a restart reports only what
  // changed since), and why the control plane refused to register it (not retried until it may work).
  '0006_dependent_reported': {
    async up(db: Kysely<unknown>) {
      /** JSON of {field: JSON of its value} the control plane acknowledged */
      await db.schema.alterTable('dependent_device').addColumn('reported', 'text').execute();
      /** JSON of RegisterRefusal, null unless the control plane refused it */
      await db.schema.alterTable('dependent_device').addColumn('refused', 'text').execute();
    },
  },
  // Log cursors per stream (src/agent/logs/logQueue.ts): the engine stamps stdout and stderr apart, so
  // one cursor per container skipped a line of one stream stamped before the other's last line taken.
  // The old cursor, the later of the two, stands for both: nothing is sent twice.
  '0007_log_stream_cursor': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('log_stream_cursor')
        .addColumn('container_id', 'text', (c) => c.notNull())
        .addColumn('stream', 'text', (c) => c.notNull())
        .addColumn('ts', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('log_stream_cursor_pk', ['container_id', 'stream'])
        .execute();
      for (const stream of ['stdout', 'stderr']) await sql`insert into log_stream_cursor select container_id, ${stream}, ts from log_cursor`.execute(db);
      await db.schema.dropTable('log_cursor').execute();
    },
  },
};

export const migrationNames: readonly string[] = Object.keys(migrations);
