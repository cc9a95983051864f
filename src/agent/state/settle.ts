// Has an applied release settled? Pure: from what the engine says of each service's container.
// Settled: every service that should run has run, without a restart, for the settle period (and
// is healthy where it has a healthcheck), or ran to completion (exit 0, not restarted by its
// policy). Failed: a service exited with an error, restarted within the period, is unhealthy or
// dead. See src/shared/deployments.ts for what the server makes of it.
import type { SettleState } from '../../shared/deployments.js';

/** What an inspect says of a service's current container. */
export interface ContainerRun {
  /** the engine's State.Status: created, running, paused, restarting, removing, exited or dead */
  status: string;
  exitCode: number;
  oomKilled: boolean;
  /** restarts by the engine (its restart policy) since the container was created */
  restartCount: number;
  /** ms since epoch of its last start */
  startedAt: number;
  /** State.Health.Status, where the container has a healthcheck */
  health: string | undefined;
  /** what the last healthcheck printed */
  healthOutput: string | undefined;
}

export type ServiceSettle = { state: 'settled' } | { state: 'settling' | 'failed'; reason?: string; recheckAt: number | undefined };

/** Health changes come with no engine event the agent follows: they are looked at this often. */
export const HEALTH_RECHECK_MS = 2000;
const UNHEALTHY_RECHECK_MS = 10_000;

export function serviceSettle(c: ContainerRun, now: number, settleMs: number): ServiceSettle {
  const restarts = c.restartCount > 0 ? `restarted ${times(c.restartCount)}` : '';
  const exited = `exited with code ${c.exitCode}${c.oomKilled ? ' (out of memory)' : ''}`;
  if (c.health === 'unhealthy') {
    const output = c.healthOutput?.trim().slice(0, 200);
    return failed([`unhealthy${output ? ` (healthcheck: ${output})` : ''}`, restarts], now + UNHEALTHY_RECHECK_MS);
  }
  switch (c.status) {
    case 'running':
    case 'paused': {
      const settlesAt = c.startedAt + settleMs;
      if (now >= settlesAt) return c.health === 'starting' ? { state: 'settling', recheckAt: now + HEALTH_RECHECK_MS } : { state: 'settled' };
      // a restart within the period is a crash; running on for the whole period still settles it
      // (the engine's start time may lie a moment after the agent's `now`, read before it)
      if (c.restartCount > 0) return failed([restarts, `running again for ${Math.max(0, Math.round((now - c.startedAt) / 1000))} s`], settlesAt);
      return { state: 'settling', recheckAt: settlesAt };
    }
    case 'restarting':
      // each exit is an engine event, which wakes the agent
      return failed([exited, restarts], undefined);
    case 'exited':
      return c.exitCode === 0 && !c.oomKilled ? { state: 'settled' } : failed([exited, restarts], undefined);
    case 'dead':
      return failed(['the container is dead'], undefined);
    default:
      // created (not started yet) or being removed: the reconciler is at it
      return { state: 'settling', recheckAt: undefined };
  }
}

export interface AppSettle {
  state: SettleState;
  /** service → why it failed */
  failures: Map<string, string>;
  /** when to look again (undefined: an engine event or the next apply will do) */
  recheckAt: number | undefined;
}

/** The app's verdict: failed if a service failed, settled once all settled. */
export function appSettle(services: Map<string, ServiceSettle>): AppSettle {
  const failures = new Map<string, string>();
  let state: SettleState = 'settled';
  let recheckAt: number | undefined;
  for (const [name, s] of services) {
    if (s.state === 'settled') continue;
    if (s.state === 'failed') failures.set(name, s.reason ?? 'failed');
    if (state !== 'failed') state = s.state;
    if (s.recheckAt !== undefined) recheckAt = Math.min(recheckAt ?? Infinity, s.recheckAt);
  }
  return { state, failures, recheckAt };
}

/** At most this much of a failed service's output goes with its error. */
export const LAST_LINES = 10;
export const LAST_LINES_BYTES = 2048;

/** The newest `LAST_LINES` non-empty lines of `text`, at most `LAST_LINES_BYTES` bytes (cut at the front). */
export function lastLines(text: string): string {
  let out = text
    .split(/\r?\n/)
    .filter((l) => l.trim())
    .slice(-LAST_LINES)
    .join('\n');
  let bytes = Buffer.from(out, 'utf8');
  if (bytes.length > LAST_LINES_BYTES) {
    bytes = bytes.subarray(bytes.length - (LAST_LINES_BYTES - Buffer.byteLength('…')));
    // a cut inside a UTF-8 sequence: drop its continuation bytes
    let i = 0;
    while (i < bytes.length && (bytes[i]! & 0xc0) === 0x80) i++;
    out = `…${bytes.subarray(i).toString('utf8')}`;
  }
  return out;
}

/** The error a failed service reports: why, and what it printed last. */
export const failureText = (reason: string, lines: string) => (lines ? `${reason}; last lines:\n${lines}` : reason);

function failed(parts: string[], recheckAt: number | undefined): ServiceSettle {
  return { state: 'failed', reason: parts.filter(Boolean).join(', '), recheckAt };
}

const times = (n: number) => `${n} time${n === 1 ? '' : 's'}`;
