// `minionutil.last_logs`: the agent's own log (the system messages of its bounded event table), as
// AutoPi's command reads the minion log: `file` (only `minion`, this log), `until` and `match`
// (regular expressions; a line is shown when it matches both, `match` ignoring case, as AutoPi's
// sed and grep -i do), `count` (only the newest that many matches), `before`/`after` (lines of
// context around each match) and `limit` (at most the newest that many lines; 0: all). One line
// per message, oldest first: `<ISO time> [LEVEL   ] message`, so that AutoPi's `\[error` finds errors.
// The patterns run on RE2 with a work budget (logPattern.ts): a caller's pattern must not be able
// to freeze the agent. The log covers every app: the device key only.
import { ValidationError } from '../../shared/errors.js';
import type { ExecuteCommand } from '../../shared/executeCommand.js';
import type { CommandPort } from '../api/devicePort.js';
import { assertDeviceScope, type KeyScope } from '../api/keyScope.js';
import { bind } from './params.js';
import { LogPattern, PatternError, PatternTooCostly, type Budget } from './logPattern.js';

/**
 * Program instructions × characters one query may spend (logPattern.ts). A typical pattern (program
 * size 10 to 100) over a full log (2,000 messages, ~250,000 characters) needs a few million to 25
 * million; the costliest searches measured (RE2's NFA, a thousand threads alive) take ~25 ns a unit.
 */
const WORK_BUDGET = 40_000_000;

export interface LogQuery {
  until: string;
  match: string;
  count: number;
  before: number;
  after: number;
  limit: number;
}

export async function lastLogs(device: CommandPort, call: ExecuteCommand, scope: KeyScope): Promise<string> {
  assertDeviceScope(scope, `${call.command} reads the agent's log, which covers every app`);
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
  const rows = await device.events();
  const lines = rows.map((r) => `${r.ts} [${r.level.toUpperCase().padEnd(8)}] ${r.message}`);
  return queryLog(lines, {
    until: a.until ?? '$',
    match: a.match ?? '.*',
    count: a.count ?? 0,
    before: a.before ?? 0,
    after: a.after ?? 0,
    limit: a.limit ?? 100,
  }).join('\n');
}

/** The lines (oldest first) that the query selects, oldest first. */
export function queryLog(lines: readonly string[], q: LogQuery): string[] {
  const budget: Budget = { left: WORK_BUDGET };
  const until = pattern(q.until, false, 'until', budget);
  const match = pattern(q.match, true, 'match', budget);
  const candidates = lines.filter((l) => until(l));
  let hits = candidates.flatMap((l, i) => (match(l) ? [i] : []));
  // AutoPi reads the log newest first: `count` keeps the newest matches
  if (q.count > 0) hits = hits.slice(-q.count);
  const shown = new Set<number>();
  for (const i of hits) for (let j = Math.max(0, i - q.before); j <= Math.min(candidates.length - 1, i + q.after); j++) shown.add(j);
  const out = candidates.filter((_, i) => shown.has(i));
  return q.limit > 0 ? out.slice(-q.limit) : out;
}

/** The pattern's test; its errors (a bad pattern, one that costs too much) name the argument. */
function pattern(source: string, ignoreCase: boolean, name: string, budget: Budget): (line: string) => boolean {
  const bad = (why: string) => new ValidationError(`/kwarg/${name}`, why, 'arguments of minionutil.last_logs');
  let re: LogPattern;
  try {
    re = new LogPattern(source, { ignoreCase });
  } catch (err) {
    throw err instanceof PatternError ? bad(`not a usable regular expression: ${err.message}`) : err;
  }
  return (line) => {
    try {
      return re.test(line, budget);
    } catch (err) {
      throw err instanceof PatternTooCostly ? bad(err.message) : err;
    }
  };
}
