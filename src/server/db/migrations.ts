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
      // Devices register themselves (the device link); projects and releases refer to them.
      await db.schema
        .createTable('device')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('unit_id', 'text', (c) => c.notNull().unique())
        .addColumn('device_type', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
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
    },
  },
});
