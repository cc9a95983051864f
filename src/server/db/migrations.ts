// Schema migrations of the server database, the same for SQLite and PostgreSQL, applied in key
// order. Never edit one that shipped. Timestamps are ISO-8601 UTC text, so both engines compare
// and sort them alike.
import type { Kysely, Migration } from 'kysely';

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
});
