// Commands for devices, over the device link: the server never opens a connection into a device. A
// command is queued (a `device_command` row) and the device's command long poll is woken; the
// device takes it (pending → delivered, atomically: one command is delivered once, whichever server
// node the device polls), runs it and posts its result (→ done, or failed when it could not run it),
// which wakes whoever awaits that result, on any node. A command nobody took or answered in time
// becomes expired. Finished commands are kept for a retention period, then deleted.
//
// Wake-up keys on the notifier (ids are arbitrary strings there):
// - `cmds:<device id>`: a command was queued for the device (its command polls re-read the queue).
//   Deliberately not the bare device id, which wakes the device's target-state polls: a command
//   then costs no target re-read, and a release sent to a whole fleet no queue re-read.
// - `cmd:<command id>`: the command finished (its awaiters re-read it).
import { PostgresAdapter, type Selectable } from 'kysely';
import { BosunError } from '../../shared/errors.js';
import { nowIso, type ServerDb, type ServerTables } from '../db/database.js';
import type { DeviceNotifier } from '../wakeups/notifier.js';

export type CommandKind = ServerTables['device_command']['kind'];
export type CommandState = ServerTables['device_command']['state'];

/** At most this many pending commands per device by default: more is a 429. */
export const MAX_PENDING_PER_DEVICE = 100;
/** Finished commands (done, failed, expired) are deleted this long after they finished, by default. */
export const RESULT_RETENTION_MS = 24 * 60 * 60_000;

export const queueKey = (deviceId: string) => `cmds:${deviceId}`;
export const resultKey = (id: number) => `cmd:${id}`;

/** What a device receives from its command poll. */
export interface DeliveredCommand {
  id: number;
  kind: CommandKind;
  payload: unknown;
}

export interface Command {
  id: number;
  deviceId: string;
  kind: CommandKind;
  payload: unknown;
  state: CommandState;
  /** done: the device's answer; failed: `{error}`; otherwise null */
  result: unknown;
  createdAt: string;
  deliveredAt: string | null;
  finishedAt: string | null;
  expiresAt: string;
}

/** The device has too many commands waiting already (HTTP 429). */
export class TooManyCommandsError extends BosunError {
  override name = 'TooManyCommandsError';
  readonly statusCode = 429;
  constructor(
    readonly deviceId: string,
    max: number,
  ) {
    super(`device ${deviceId} has ${max} commands waiting already; try again once it has taken them`);
  }
}

/** What posting a result came to. */
export type CompleteOutcome =
  /** stored now */
  | 'stored'
  /** the command had a result already (a repeated post): the first one stays */
  | 'finished'
  /** too late: the command expired */
  | 'expired'
  /** no such command for this device */
  | 'unknown';

export interface DeviceCommandsOptions {
  maxPendingPerDevice?: number;
  retentionMs?: number;
}

const FINAL: readonly CommandState[] = ['done', 'failed', 'expired'];
const isFinal = (s: CommandState) => FINAL.includes(s);
const CHUNK = 500;

export class DeviceCommands {
  readonly maxPending: number;
  readonly retentionMs: number;
  private readonly postgres: boolean;

  constructor(
    private readonly db: ServerDb,
    private readonly notifier: DeviceNotifier,
    opts: DeviceCommandsOptions = {},
  ) {
    this.maxPending = opts.maxPendingPerDevice ?? MAX_PENDING_PER_DEVICE;
    this.retentionMs = opts.retentionMs ?? RESULT_RETENTION_MS;
    this.postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  }

  /** Queues a command for one device; throws TooManyCommandsError when its queue is full. */
  async queue(deviceId: string, kind: CommandKind, payload: unknown, ttlMs: number): Promise<number> {
    const queued = (await this.queueMany([deviceId], kind, payload, ttlMs)).get(deviceId)!;
    if (queued instanceof Error) throw queued;
    return queued;
  }

  /**
   * Queues the same command for each device (one insert and one notification per 500 devices):
   * per device its command id, or TooManyCommandsError when its queue is full. The bound is checked
   * before inserting, so two nodes queueing at the same instant may overshoot it by a little.
   */
  async queueMany(deviceIds: readonly string[], kind: CommandKind, payload: unknown, ttlMs: number): Promise<Map<string, number | TooManyCommandsError>> {
    const out = new Map<string, number | TooManyCommandsError>();
    const json = JSON.stringify(payload ?? null);
    for (let i = 0; i < deviceIds.length; i += CHUNK) {
      const ids = [...new Set(deviceIds.slice(i, i + CHUNK))];
      const created = new Date();
      const now = created.toISOString();
      const counts = await this.db
        .selectFrom('device_command')
        .select(['device_id', (eb) => eb.fn.countAll<number | string>().as('n')])
        .where('device_id', 'in', ids)
        .where('state', '=', 'pending')
        .where('expires_at', '>', now)
        .groupBy('device_id')
        .execute();
      const full = new Set(counts.filter((c) => Number(c.n) >= this.maxPending).map((c) => c.device_id));
      for (const id of full) out.set(id, new TooManyCommandsError(id, this.maxPending));
      const room = ids.filter((id) => !full.has(id));
      if (!room.length) continue;
      const expires = new Date(created.getTime() + ttlMs).toISOString();
      const rows = await this.db
        .insertInto('device_command')
        .values(
          room.map((device_id) => ({
            device_id,
            kind,
            payload: json,
            state: 'pending' as const,
            result: null,
            created_at: now,
            delivered_at: null,
            finished_at: null,
            expires_at: expires,
          })),
        )
        .returning(['id', 'device_id'])
        .execute();
      for (const r of rows) out.set(r.device_id, r.id);
      await this.notifier.notify(room.map(queueKey));
    }
    return out;
  }

  /**
   * The device's pending, unexpired commands, oldest first, now marked delivered. Atomic: two polls
   * of one device (on one node or two) never both receive a command.
   */
  async next(deviceId: string, limit = this.maxPending): Promise<DeliveredCommand[]> {
    const now = nowIso();
    // one statement: on PostgreSQL a concurrent poll skips the rows this one is taking, and the
    // outer `state = 'pending'` is re-checked on a row as it is once another taker committed
    let pick = this.db
      .selectFrom('device_command')
      .select('id')
      .where('device_id', '=', deviceId)
      .where('state', '=', 'pending')
      .where('expires_at', '>', now)
      .orderBy('id')
      .limit(limit);
    if (this.postgres) pick = pick.forUpdate().skipLocked();
    const rows = await this.db
      .updateTable('device_command')
      .set({ state: 'delivered', delivered_at: now })
      .where('id', 'in', pick)
      .where('state', '=', 'pending')
      .returning(['id', 'kind', 'payload'])
      .execute();
    return rows.sort((a, b) => a.id - b.id).map((r) => ({ id: r.id, kind: r.kind, payload: JSON.parse(r.payload) as unknown }));
  }

  /** Puts commands taken by a poll that could not answer (the device hung up) back in the queue. */
  async undeliver(deviceId: string, ids: readonly number[]): Promise<void> {
    if (!ids.length) return;
    await this.db
      .updateTable('device_command')
      .set({ state: 'pending', delivered_at: null })
      .where('device_id', '=', deviceId)
      .where('id', 'in', ids)
      .where('state', '=', 'delivered')
      .execute();
    await this.notifier.notify([queueKey(deviceId)]);
  }

  /**
   * The device's answer to one of its commands: `done` with its result, or `failed` (it could not
   * run it). Only the device the command was for may answer it, and only once.
   */
  async complete(id: number, deviceId: string, result: unknown, state: 'done' | 'failed' = 'done'): Promise<CompleteOutcome> {
    const { numUpdatedRows } = await this.db
      .updateTable('device_command')
      .set({ state, result: JSON.stringify(result ?? null), finished_at: nowIso() })
      .where('id', '=', id)
      .where('device_id', '=', deviceId)
      .where('state', 'in', ['pending', 'delivered'])
      .executeTakeFirst();
    if (numUpdatedRows) {
      await this.notifier.notify([resultKey(id)]);
      return 'stored';
    }
    const row = await this.db.selectFrom('device_command').select('state').where('id', '=', id).where('device_id', '=', deviceId).executeTakeFirst();
    if (!row) return 'unknown';
    return row.state === 'expired' ? 'expired' : 'finished';
  }

  async get(id: number): Promise<Command | undefined> {
    const r = await this.db.selectFrom('device_command').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toCommand(r);
  }

  /**
   * Waits for the command to finish (on any node). When `timeoutMs` passes first, a command still
   * pending or delivered becomes expired (nobody is waiting for it any more). When `signal` aborts,
   * the command is left as it is. Undefined when the command is gone (its device was deleted).
   */
  async awaitResult(id: number, timeoutMs: number, signal?: AbortSignal): Promise<Command | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const left = deadline - Date.now();
      // listen first, then look: a result posted between the two is not missed
      const cancel = new AbortController();
      const relay = () => cancel.abort();
      signal?.addEventListener('abort', relay, { once: true });
      const woken = left > 0 && !signal?.aborted ? this.notifier.waitForChange(resultKey(id), left, cancel.signal) : Promise.resolve(false);
      try {
        const command = await this.get(id);
        if (!command || isFinal(command.state) || signal?.aborted) return command;
        if (!(await woken)) {
          if (signal?.aborted) return command;
          break; // the time is up
        }
      } finally {
        cancel.abort();
        signal?.removeEventListener('abort', relay);
      }
    }
    await this.expire([id]);
    return this.get(id); // expired, or the result that came in at the last moment
  }

  /** Commands still pending or delivered become expired. */
  async expire(ids: readonly number[]): Promise<void> {
    if (!ids.length) return;
    await this.db
      .updateTable('device_command')
      .set({ state: 'expired', finished_at: nowIso() })
      .where('id', 'in', ids)
      .where('state', 'in', ['pending', 'delivered'])
      .execute();
  }

  /**
   * Housekeeping (any node, any time; idempotent): commands past their expiry that nobody answered
   * become expired, and finished ones older than the retention period are deleted.
   */
  async sweep(now = new Date()): Promise<{ expired: number; deleted: number }> {
    const iso = now.toISOString();
    const expired = await this.db
      .updateTable('device_command')
      .set({ state: 'expired', finished_at: iso })
      .where('state', 'in', ['pending', 'delivered'])
      .where('expires_at', '<=', iso)
      .executeTakeFirst();
    const deleted = await this.db
      .deleteFrom('device_command')
      .where('state', 'in', FINAL)
      .where('finished_at', '<', new Date(now.getTime() - this.retentionMs).toISOString())
      .executeTakeFirst();
    return { expired: Number(expired.numUpdatedRows), deleted: Number(deleted.numDeletedRows) };
  }
}

function toCommand(r: Selectable<ServerTables['device_command']>): Command {
  return {
    id: r.id,
    deviceId: r.device_id,
    kind: r.kind,
    payload: JSON.parse(r.payload) as unknown,
    state: r.state,
    result: r.result === null ? null : (JSON.parse(r.result) as unknown),
    createdAt: r.created_at,
    deliveredAt: r.delivered_at,
    finishedAt: r.finished_at,
    expiresAt: r.expires_at,
  };
}
