// Applies pending migrations with kysely's Migrator (each under the Migrator's lock, in a
// transaction as kysely does for SQLite). Loaded on demand: openAgentDb imports this module only
// when the database is not already current, so the Migrator costs no memory on ordinary starts.
import { Migrator, type Kysely } from 'kysely';
import { migrations } from './migrations.js';

/** Returns the error of the migration that failed, if one did. */
export async function migrateToLatest(db: Kysely<any>): Promise<Error | undefined> {
  const migrator = new Migrator({ db, provider: { getMigrations: async () => migrations } });
  const { error } = await migrator.migrateToLatest();
  if (!error) return undefined;
  return error instanceof Error ? error : new Error(String(error));
}
