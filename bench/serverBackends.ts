// The storage backends the control-plane benches (deviceLink, logbook) run a Bosun server on: SQLite,
// and PostgreSQL when $BENCH_DATABASE_URL names a cluster they may create databases in (as
// scripts/bench.sh arranges with scripts/postgres.sh).
import { freshPostgres } from '../test/server/backends.js';
import { log, onCleanup } from './lib.js';

export interface Backend {
  name: 'sqlite' | 'postgres';
  adminUrl?: string;
}

/** The backends $<envName> names (default: both); PostgreSQL only when $BENCH_DATABASE_URL is set. */
export function wantedBackends(envName: string, bench: string): Backend[] {
  const wanted = (process.env[envName] ?? 'sqlite,postgres').split(',');
  const backends: Backend[] = [];
  if (wanted.includes('sqlite')) backends.push({ name: 'sqlite' });
  const pgUrl = process.env.BENCH_DATABASE_URL;
  if (wanted.includes('postgres')) {
    if (pgUrl && /^postgres(ql)?:\/\//.test(pgUrl)) backends.push({ name: 'postgres', adminUrl: pgUrl });
    else log(`${bench}: no PostgreSQL ($BENCH_DATABASE_URL unset): SQLite only`);
  }
  return backends;
}

/** A fresh database on the backend's cluster, dropped at cleanup; undefined on SQLite (the server's own file). */
export async function freshDatabaseUrl(backend: Backend): Promise<string | undefined> {
  if (!backend.adminUrl) return undefined;
  const db = await freshPostgres(backend.adminUrl);
  onCleanup(() => db.drop());
  return db.url;
}
