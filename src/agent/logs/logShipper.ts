// Ships the device's logs to the control plane (cloud mode only: agent.ts imports this module then):
// what its services print and the agent's own system messages, as logFollower gives them, gathered
// in memory for a moment, queued on disk (logQueue.ts) and uploaded oldest first as NDJSON
// batches (gzipped from 8 KB) with the device key (`POST /device/v1/logs`). Offline, the queue fills (bounded) and
// drains in order once the server answers again; a batch leaves it only when the server
// acknowledged it. Each container is followed from the engine time of its last line queued, so a
// restart of the agent neither loses nor repeats a line.
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { MAX_LOG_MESSAGE, type ShippedLogLine } from '../../shared/deviceLogs.js';
import { backoffMs, describe, sleep } from '../cloud/cloudLink.js';
import { request } from '../cloud/httpClient.js';
import { SUPERVISED_FILTER } from '../engine/labels.js';
import type { EventLog } from '../eventLog.js';
import type { AgentDb } from '../store/database.js';
import { engineTime, followLogs, type LineOrigin, type LogLine, type StreamCursors } from './logFollower.js';
import { droppedMarker, LogQueue, type LogQueueLimits } from './logQueue.js';
import { isoTime } from '../../shared/isoTime.js';

export interface LogShipperOptions {
  endpoint: string;
  /** undefined until the device registered: lines wait in the queue meanwhile */
  deviceKey(): string | undefined;
  docker: Docker;
  scope: string | undefined;
  log: EventLog;
  db: AgentDb;
  queue?: LogQueueLimits;
  /** an upload carries at most this many lines (default 500) … */
  batchLines?: number;
  /** … and about this many bytes of NDJSON before compression (default 256 KiB) */
  batchBytes?: number;
  /** lines gather in memory this long before they are queued on disk (default 500 ms) */
  flushMs?: number;
}

/** In memory, before the queue: lines beyond this (the disk cannot keep up) are dropped, with a marker. */
const MAX_PENDING_LINES = 2000;
const MAX_PENDING_BYTES = 1024 * 1024;
/** Retries of an upload: exponential backoff with jitter, at most this. */
const MAX_RETRY_MS = 30_000;
/** Cursors of containers that are gone are forgotten this often. */
const FORGET_EVERY_MS = 60 * 60_000;

/**
 * Batches from this size on go gzipped. A quiet device's few lines are not worth compressing, and
 * zlib, loaded on the first compression, costs the agent 1.4 MB of RSS for good.
 */
const GZIP_FROM_BYTES = 8 * 1024;

async function encoded(ndjson: string): Promise<{ body: Buffer; encoding?: string }> {
  const raw = Buffer.from(ndjson);
  if (raw.length < GZIP_FROM_BYTES) return { body: raw };
  const { gzip } = await import('node:zlib');
  return { body: await promisify(gzip)(raw), encoding: 'gzip' };
}
const nowTime = () => engineTime(isoTime())!;

export class LogShipper {
  private pending: string[] = [];
  private pendingBytes = 0;
  /** lines not taken because memory was full: a marker says how many, where they would have been */
  private overflow = { count: 0, ts: '' };
  /** per container and stream, the engine time of its last line taken (ahead of the queue's cursors until flushed) */
  private readonly taken: Map<string, StreamCursors>;
  private dirty = new Map<string, StreamCursors>();
  private flushTimer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  private readonly batchLines: number;
  private readonly batchBytes: number;
  private readonly flushMs: number;
  private readonly abort = new AbortController();
  /** set when lines were queued; wakes the sender */
  private more = false;
  private wake: (() => void) | undefined;
  private stopped = false;
  private readonly stopFollowing: () => void;
  private readonly sending: Promise<void>;
  private forgetting: Promise<void>;
  private readonly forgetTimer: NodeJS.Timeout;

  static async start(opts: LogShipperOptions): Promise<LogShipper> {
    return new LogShipper(opts, await LogQueue.open(opts.db, nowTime(), opts.queue));
  }

  private constructor(
    private readonly o: LogShipperOptions,
    private readonly queue: LogQueue,
  ) {
    this.batchLines = o.batchLines ?? 500;
    this.batchBytes = o.batchBytes ?? 256 * 1024;
    this.flushMs = o.flushMs ?? 500;
    this.taken = new Map(queue.cursors);
    // a stream with no line taken yet starts where shipping began
    const since = (id: string) => ({ stdout: queue.startedAt, stderr: queue.startedAt, ...this.taken.get(id) });
    this.stopFollowing = followLogs(o.docker, o.scope, o.log, (line, origin) => this.take(line, origin), { since });
    this.sending = this.sendLoop();
    this.forgetting = this.forgetGone();
    this.forgetTimer = setInterval(() => (this.forgetting = this.forgetGone()), FORGET_EVERY_MS);
    this.forgetTimer.unref();
  }

  /** Stops following and sending; what was taken is queued for the next start. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopFollowing();
    clearInterval(this.forgetTimer);
    this.abort.abort();
    await Promise.all([this.sending, this.forgetting]);
    await this.flush();
  }

  private take(line: LogLine, origin?: LineOrigin): void {
    if (this.stopped) return;
    let ts = isoTime(line.timestamp);
    if (origin?.time) {
      // a stream's cursor is its latest line taken (the follower drops what a resumed log sends again)
      const stream = line.isStdErr ? 'stderr' : 'stdout';
      const taken = this.taken.get(origin.containerId) ?? {};
      if (!taken[stream] || origin.time > taken[stream]) {
        this.taken.set(origin.containerId, { ...taken, [stream]: origin.time });
        this.dirty.set(origin.containerId, { ...this.dirty.get(origin.containerId), [stream]: origin.time });
      }
      ts = origin.time;
    }
    const shipped: Omit<ShippedLogLine, 'seq'> = {
      ts,
      stream: line.isSystem ? 'system' : line.isStdErr ? 'stderr' : 'stdout',
      message: line.message.length > MAX_LOG_MESSAGE ? line.message.slice(0, MAX_LOG_MESSAGE) : line.message,
      ...(line.appId ? { app_id: line.appId } : {}),
      ...(line.serviceName ? { service: line.serviceName } : {}),
      ...(origin?.releaseId ? { release_id: origin.releaseId } : {}),
    };
    this.add(shipped);
  }

  /** Queues a line on disk before it resolves (a dependent device's, posted by its gateway app); false when it was dropped. */
  async ship(line: Omit<ShippedLogLine, 'seq'>): Promise<boolean> {
    const taken = this.add(line);
    await this.flush();
    return taken;
  }

  /** Takes a line; it is queued on disk within `flushMs`. False when it was dropped (memory full, or stopped). */
  private add(line: Omit<ShippedLogLine, 'seq'>): boolean {
    if (this.stopped) return false;
    const json = JSON.stringify(line);
    if (this.pending.length >= MAX_PENDING_LINES || this.pendingBytes + json.length > MAX_PENDING_BYTES) {
      this.overflow = { count: this.overflow.count + 1, ts: line.ts };
      return false;
    }
    if (this.overflow.count) {
      this.push(droppedMarker(this.overflow.count, this.overflow.ts));
      this.overflow = { count: 0, ts: '' };
    }
    this.push(json);
    if (this.pending.length >= this.batchLines) void this.flush();
    else if (!this.flushTimer) this.flushTimer = setTimeout(() => void this.flush(), this.flushMs);
    return true;
  }

  private push(json: string): void {
    this.pending.push(json);
    this.pendingBytes += json.length;
  }

  /** Moves what was taken (lines and cursors) to the queue on disk, one flush after the other. */
  private flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.flushing = this.flushing.then(async () => {
      if (!this.pending.length && !this.dirty.size) return;
      const lines = this.pending;
      const cursors = this.dirty;
      this.pending = [];
      this.pendingBytes = 0;
      this.dirty = new Map();
      try {
        await this.queue.append(lines, cursors);
        this.more = true;
        this.wake?.();
      } catch (err) {
        // the disk failed: these lines are lost, and a marker in their place says so
        this.pending.unshift(droppedMarker(lines.length, isoTime()));
        this.o.log.logger.warn({ err }, 'Device logs could not be queued');
      }
    });
    return this.flushing;
  }

  private async sendLoop(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        const key = this.o.deviceKey();
        this.more = false;
        const batch = key ? await this.queue.next(this.batchLines, this.batchBytes) : undefined;
        if (!batch) {
          await this.idle(key ? 60_000 : 1000);
          continue;
        }
        const { body, encoding } = await encoded(batch.ndjson);
        const answer = await request(`${this.o.endpoint}/device/v1/logs?queue=${this.queue.id}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key!}`, 'content-type': 'application/x-ndjson', ...(encoding ? { 'content-encoding': encoding } : {}) },
          body,
          timeoutMs: 60_000,
          signal: this.abort.signal,
        });
        if (answer.status === 200) {
          const { last_seq } = JSON.parse(answer.body) as { last_seq: number };
          await this.queue.ack(Math.min(last_seq, batch.lastSeq));
          failures = 0;
        } else if (answer.status === 400 || answer.status === 413) {
          // refused as it is, it would be refused again: dropped rather than holding up every later line
          this.o.log.warn(`${batch.lines} log lines refused by the server and dropped: ${describe(answer)}`);
          await this.queue.ack(batch.lastSeq);
        } else {
          throw new Error(describe(answer));
        }
      } catch (err) {
        this.queue.release();
        if (this.stopped) return;
        const delay = Math.min(MAX_RETRY_MS, backoffMs(failures++));
        // the agent's log only: offline, a system message per attempt would fill the very queue it is about
        this.o.log.logger.warn(
          `Device logs not sent (${this.queue.size.lines} lines waiting): ${(err as Error).message}; retrying in ${Math.ceil(delay / 1000)} s`,
        );
        await sleep(delay, this.abort.signal);
      }
    }
  }

  /** Until lines are queued, `ms` pass or the shipper stops. */
  private idle(ms: number): Promise<void> {
    if (this.more || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.abort.signal.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.abort.signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  /** Forgets the cursors of containers that are gone (each release replaces some). */
  private async forgetGone(): Promise<void> {
    const listedAt = nowTime();
    try {
      const all = await this.o.docker.listContainers({ all: true, filters: SUPERVISED_FILTER });
      const existing = new Set(all.map((c) => c.Id));
      // a container whose line came after the listing exists, listed or not
      for (const [id, { stdout = '', stderr = '' }] of this.taken) if (stdout >= listedAt || stderr >= listedAt) existing.add(id);
      await this.queue.forgetContainers(existing);
      for (const id of [...this.taken.keys()]) if (!existing.has(id)) this.taken.delete(id);
    } catch (err) {
      this.o.log.logger.warn({ err }, 'Log cursors of removed containers not forgotten');
    }
  }
}
