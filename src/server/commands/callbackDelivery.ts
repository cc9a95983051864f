// Delivers the callbacks of remote executions: when a job with a `callback_url` is done or timed
// out, the server POSTs its result document (as GET …/command_result/{jid}/ shows it) there,
// signed (callbackKey.ts), and retries with backoff until the receiver answers 2xx or
// MAX_ATTEMPTS failed. The state is in the database (command_job), so any node delivers any job's
// callback: each node looks for due callbacks every second (one indexed read) and takes one by
// moving its due time past the attempt's deadline in one conditional update: only one node wins
// it, and if that node dies mid-attempt the callback is due again once the deadline passes.
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyBaseLogger } from 'fastify';
import { BOSUN_VERSION } from '../../shared/version.js';
import { nowIso, type ServerDb } from '../db/database.js';
import { signature, SIGNATURE_HEADER, type CallbackKey } from './callbackKey.js';
import type { DeviceCommands } from './deviceCommands.js';
import { jobDocument, type ExecuteJobs } from './executeJobs.js';

const MAX_ATTEMPTS = 10;
/** One attempt may take this long (the receiver answering included). */
const ATTEMPT_TIMEOUT_MS = 10_000;
/** A taken callback is due again this long after its attempt's deadline, should its node be gone. */
const LEASE_MARGIN_MS = 20_000;
/** Due callbacks are looked for this often. */
const SCAN_EVERY_MS = 1000;
/** The first retry's delay; each further one doubles it, up to MAX_DELAY_MS. */
const RETRY_BASE_MS = 1000;
const MAX_DELAY_MS = 5 * 60_000;
const BATCH = 50;

export interface CallbackDeliveryDeps {
  db: ServerDb;
  commands: DeviceCommands;
  jobs: ExecuteJobs;
  key: CallbackKey;
  log: FastifyBaseLogger;
}

/** The delay after failed attempt number `attempt` (1-based): doubling, capped, with jitter. */
const retryDelayMs = (attempt: number) => Math.round(Math.min(MAX_DELAY_MS, RETRY_BASE_MS * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2));

export class CallbackDelivery {
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly attempts = new Set<Promise<void>>();

  constructor(private readonly d: CallbackDeliveryDeps) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops looking; attempts under way are cut short and left due again at once, for any node. */
  async close(): Promise<void> {
    this.stop.abort();
    await this.loop;
    await Promise.all([...this.attempts]);
  }

  private async run(): Promise<void> {
    while (!this.stop.signal.aborted) {
      try {
        await this.deliverDue();
      } catch (err) {
        if (!this.stop.signal.aborted) this.d.log.error({ err }, 'callback delivery: looking for due callbacks failed');
      }
      await sleep(SCAN_EVERY_MS, undefined, { signal: this.stop.signal }).catch(() => undefined);
    }
  }

  private async deliverDue(): Promise<void> {
    const now = nowIso();
    const due = await this.d.db
      .selectFrom('command_job as j')
      .innerJoin('device_command as c', 'c.id', 'j.command_id')
      .select(['j.jid', 'j.command_id', 'j.callback_next_at', 'j.callback_attempts', 'c.state'])
      .where('j.callback_next_at', '<=', now)
      .where((eb) => eb.or([eb('c.state', 'in', ['done', 'failed', 'expired']), eb('c.expires_at', '<=', now)]))
      .orderBy('j.callback_next_at')
      .limit(BATCH)
      .execute();
    // a job whose time is up is timed out before its callback says so
    await this.d.commands.expire(due.filter((j) => j.state === 'pending' || j.state === 'delivered').map((j) => j.command_id));
    for (const job of due) {
      const deadline = new Date(Date.now() + ATTEMPT_TIMEOUT_MS + LEASE_MARGIN_MS).toISOString();
      const { numUpdatedRows } = await this.d.db
        .updateTable('command_job')
        .set((eb) => ({ callback_next_at: deadline, callback_attempts: eb('callback_attempts', '+', 1) }))
        .where('jid', '=', job.jid)
        .where('callback_next_at', '=', job.callback_next_at)
        .executeTakeFirst();
      if (!numUpdatedRows) continue; // another node took it
      const attempt = this.attempt(job.jid, job.callback_attempts + 1, deadline).catch((err: Error) => this.d.log.error({ err }, 'callback delivery failed'));
      this.attempts.add(attempt);
      void attempt.finally(() => this.attempts.delete(attempt));
    }
  }

  private async attempt(jid: string, attempt: number, taken: string): Promise<void> {
    const job = await this.d.jobs.find(jid);
    if (!job?.callback_url) return;
    const body = JSON.stringify(jobDocument(job));
    let failure: string;
    try {
      const { key } = await this.d.key.current();
      const res = await fetch(job.callback_url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': `bosun-server/${BOSUN_VERSION}`, [SIGNATURE_HEADER]: signature(key, body) },
        body,
        redirect: 'manual',
        signal: AbortSignal.any([this.stop.signal, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)]),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) {
        await this.settle(jid, taken, { callback_next_at: null, callback_delivered_at: nowIso(), callback_error: null });
        return;
      }
      failure = `the receiver answered ${res.status}`;
    } catch (err) {
      if (this.stop.signal.aborted) {
        // cut short by this node stopping: not the receiver's failure, and due again for any node
        await this.settle(jid, taken, { callback_next_at: nowIso(), callback_attempts: attempt - 1 });
        return;
      }
      failure =
        (err as Error).name === 'TimeoutError'
          ? `no answer within ${ATTEMPT_TIMEOUT_MS / 1000} s`
          : ((err as Error & { cause?: Error }).cause ?? (err as Error)).message;
    }
    const last = attempt >= MAX_ATTEMPTS;
    // the URL's origin only: its path or query may hold the receiver's secrets
    this.d.log.warn(
      { jid, receiver: new URL(job.callback_url).origin, attempt },
      `callback of job ${jid} not delivered: ${failure}${last ? '; giving up' : ''}`,
    );
    await this.settle(jid, taken, {
      callback_next_at: last ? null : new Date(Date.now() + retryDelayMs(attempt)).toISOString(),
      callback_error: last ? `gave up after ${attempt} attempts: ${failure}` : failure,
    });
  }

  /** Records an attempt's outcome, unless the callback was taken again meanwhile (its deadline passed). */
  private async settle(
    jid: string,
    taken: string,
    set: { callback_next_at: string | null; callback_delivered_at?: string; callback_error?: string | null; callback_attempts?: number },
  ): Promise<void> {
    await this.d.db.updateTable('command_job').set(set).where('jid', '=', jid).where('callback_next_at', '=', taken).execute();
  }
}
