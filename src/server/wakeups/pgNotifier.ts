// DeviceNotifier for several server nodes on one PostgreSQL: LISTEN/NOTIFY on one channel, the
// payload a comma-separated list of device ids. Each node keeps one dedicated connection that
// LISTENs and wakes its own waiters; a change is announced with pg_notify through the shared pool
// after it committed, so every node (this one included) hears it. When the listening connection
// drops, notifications sent meanwhile are lost: the node reconnects with backoff and then wakes
// every waiter, which re-reads its ETag and so misses nothing.
import { sql } from 'kysely';
import pg from 'pg';
import type { ServerDb } from '../db/database.js';
import { LocalNotifier } from './localNotifier.js';
import type { DeviceNotifier } from './notifier.js';

export const TARGET_CHANNEL = 'bosun_device_target';
/** NOTIFY's payload must be shorter than 8000 bytes. */
const MAX_PAYLOAD = 7999;
/** Reconnect delays: from 100 ms, doubling, at most this, with jitter. */
const MAX_BACKOFF_MS = 10_000;
/** The listening connection is checked this often; a check that takes longer than this fails it. */
const PING_EVERY_MS = 30_000;
const PING_TIMEOUT_MS = 10_000;

export interface PgNotifierOptions {
  url: string;
  db: ServerDb;
  log?: (msg: string) => void;
}

/** Device ids as NOTIFY payloads, each under the size limit. */
export function payloadChunks(ids: readonly string[], max = MAX_PAYLOAD): string[] {
  const chunks: string[] = [];
  let current = '';
  for (const id of ids) {
    if (!id || id.includes(',') || Buffer.byteLength(id) > max) throw new Error(`not a device id: ${JSON.stringify(id)}`);
    const next = current ? `${current},${id}` : id;
    if (Buffer.byteLength(next) > max) {
      chunks.push(current);
      current = id;
    } else current = next;
  }
  if (current) chunks.push(current);
  return chunks;
}

export class PgNotifier implements DeviceNotifier {
  /** this node's pending polls */
  private readonly local = new LocalNotifier();
  private client: pg.Client | undefined;
  private closed = false;
  private attempt = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private connecting: Promise<void> | undefined;
  /** called when the listening connection is next re-established */
  private connectedListeners = new Set<() => void>();
  /** how many times the listening connection was re-established after a loss */
  reconnects = 0;

  private constructor(private readonly opts: PgNotifierOptions) {}

  /** Connects the listening connection before returning: a node never misses a change it could hear. */
  static async open(opts: PgNotifierOptions): Promise<PgNotifier> {
    const n = new PgNotifier(opts);
    await n.connect();
    return n;
  }

  get listening(): boolean {
    return this.client !== undefined;
  }

  /** The backend pid of the listening connection (to watch or terminate it). */
  get listenerPid(): number | undefined {
    return (this.client as unknown as { processID?: number } | undefined)?.processID;
  }

  /** Pending waits on this node whose key starts with `prefix`. */
  waiting(prefix = ''): number {
    return this.local.waiting(prefix);
  }

  /** Resolves when the listening connection is next re-established after a loss. */
  nextConnect(): Promise<void> {
    return new Promise((resolve) => this.connectedListeners.add(resolve));
  }

  async notify(deviceIds: readonly string[]): Promise<void> {
    if (!deviceIds.length) return;
    // this node's waiters at once; the NOTIFY wakes the other nodes (and, again, this one: a waiter
    // woken twice just re-reads its ETag)
    this.wake(deviceIds);
    const chunks = payloadChunks(deviceIds);
    await sql`select pg_notify(${TARGET_CHANNEL}, p) from unnest(${chunks}::text[]) as p`.execute(this.opts.db);
  }

  waitForChange(deviceId: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    return this.local.waitForChange(deviceId, timeoutMs, signal);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearInterval(this.pingTimer);
    this.local.wakeAll();
    const client = this.client;
    this.client = undefined;
    if (client) await this.drop(client);
  }

  private wake(ids: Iterable<string>): void {
    void this.local.notify(ids);
  }

  private connect(): Promise<void> {
    this.connecting ??= (async () => {
      const client = new pg.Client({ connectionString: this.opts.url, keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
      client.on('error', (err) => this.lost(client, err));
      client.on('end', () => this.lost(client, new Error('connection ended')));
      client.on('notification', (msg) => {
        if (msg.channel === TARGET_CHANNEL && msg.payload) this.wake(msg.payload.split(','));
      });
      try {
        await client.connect();
        await client.query(`LISTEN ${TARGET_CHANNEL}`);
      } catch (err) {
        await this.drop(client);
        throw err;
      }
      if (this.closed) {
        await this.drop(client);
        return;
      }
      this.client = client;
      this.attempt = 0;
      clearInterval(this.pingTimer);
      this.pingTimer = setInterval(() => void this.ping(client), PING_EVERY_MS);
      this.pingTimer.unref();
    })().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  /** The listening connection failed or ended: forget it and reconnect (unless closing). */
  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    clearInterval(this.pingTimer);
    void this.drop(client);
    if (this.closed) return;
    this.opts.log?.(`target notifications: the listening connection was lost (${err.message}); reconnecting`);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const ceiling = Math.min(MAX_BACKOFF_MS, 100 * 2 ** this.attempt++);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connect().then(
        () => {
          if (this.closed) return;
          this.reconnects++;
          this.opts.log?.('target notifications: listening again');
          // changes made while nobody listened were not heard: every waiter re-checks its ETag
          this.local.wakeAll();
          for (const f of [...this.connectedListeners]) f();
          this.connectedListeners.clear();
        },
        (e: Error) => {
          this.opts.log?.(`target notifications: reconnecting failed (${e.message})`);
          this.scheduleReconnect();
        },
      );
    }, delay);
    this.reconnectTimer.unref();
  }

  /** A connection that died silently (no FIN, no RST) is noticed by a query that does not answer. */
  private async ping(client: pg.Client): Promise<void> {
    if (this.client !== client) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        client.query('select 1'),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no answer to a ping')), PING_TIMEOUT_MS))),
      ]);
    } catch (err) {
      this.lost(client, err as Error);
    } finally {
      clearTimeout(timer);
    }
  }

  private async drop(client: pg.Client): Promise<void> {
    client.removeAllListeners('notification');
    client.removeAllListeners('end');
    client.removeAllListeners('error');
    client.on('error', () => {}); // late socket errors of a connection we gave up on
    const stream = (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
    await Promise.race([client.end().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
    stream?.destroy();
  }
}
