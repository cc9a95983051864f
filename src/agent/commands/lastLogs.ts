// `minionutil.last_logs`: the agent's own log (the system messages of its bounded event table), as
// AutoPi's command reads the minion log: `file` (only `minion`, this log), `until` and `match`
// (regular expressions; a line is shown when it matches both, `match` ignoring case, as AutoPi's
// sed and grep -i do), `count` (only the newest that many matches), `before`/`after` (lines of
// context around each match) and `limit` (at most the newest that many lines; 0: all). One line
// per message, oldest first: `<ISO time> [LEVEL   ] message`, so that AutoPi's `\[error` finds errors.
import { ValidationError } from '../../shared/errors.js';
import type { ExecuteCommand } from '../../shared/executeCommand.js';
import type { Agent } from '../agent.js';
import { bind } from './params.js';

export interface LogQuery {
  until: string;
  match: string;
  count: number;
  before: number;
  after: number;
  limit: number;
}

export async function lastLogs(agent: Agent, call: ExecuteCommand): Promise<string> {
  const a = bind(call, [
    { name: 'file', type: 'string' },
    { name: 'until', type: 'string' },
    { name: 'match', type: 'string' },
    { name: 'count', type: 'integer' },
    { name: 'before', type: 'integer' },
    { name: 'after', type: 'integer' },
    { name: 'limit', type: 'integer' },
  ]);
  if (a.file !== undefined && a.file !== 'minion') throw new ValidationError('/kwarg/file', 'this device has one log, minion', `arguments of ${call.command}`);
  for (const name of ['count', 'before', 'after', 'limit'] as const) {
    if ((a[name] ?? 0) < 0) throw new ValidationError(`/kwarg/${name}`, 'must not be negative', `arguments of ${call.command}`);
  }
  const rows = await agent.store.db.selectFrom('event').select(['ts', 'level', 'message']).orderBy('id').execute();
  const lines = rows.map((r) => `${r.ts} [${r.level.toUpperCase().padEnd(8)}] ${r.message}`);
  return queryLog(lines, { until: a.until ?? '$', match: a.match ?? '.*', count: a.count ?? 0, before: a.before ?? 0, after: a.after ?? 0, limit: a.limit ?? 100 }).join('\n');
}

/** The lines (oldest first) that the query selects, oldest first. */
export function queryLog(lines: readonly string[], q: LogQuery): string[] {
  const until = pattern(q.until, '', 'until');
  const match = pattern(q.match, 'i', 'match');
  const candidates = lines.filter((l) => until.test(l));
  let hits = candidates.flatMap((l, i) => (match.test(l) ? [i] : []));
  // AutoPi reads the log newest first: `count` keeps the newest matches
  if (q.count > 0) hits = hits.slice(-q.count);
  const shown = new Set<number>();
  for (const i of hits) for (let j = Math.max(0, i - q.before); j <= Math.min(candidates.length - 1, i + q.after); j++) shown.add(j);
  const out = candidates.filter((_, i) => shown.has(i));
  return q.limit > 0 ? out.slice(-q.limit) : out;
}

function pattern(source: string, flags: string, name: string): RegExp {
  try {
    return new RegExp(source, flags);
  } catch (err) {
    throw new ValidationError(`/kwarg/${name}`, `not a regular expression: ${(err as Error).message}`, 'arguments of minionutil.last_logs');
  }
}
