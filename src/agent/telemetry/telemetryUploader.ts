// Uploads the buffered telemetry to the control plane (cloud mode), oldest first, one batch at a
// time (`POST /device/v1/telemetry` with the device key). New points are sent a moment after they
// arrive, so that points posted together travel together. A failed upload is retried with backoff
// and jitter (new points meanwhile wait for the retry); the batch leaves the buffer only once the
// server answered 200 (stored, or already stored before), or 400 (it can never be stored: dropped,
// said in the log).
import type { EventLog } from '../eventLog.js';
import { backoffMs, describe } from '../cloud/cloudLink.js';
import { request } from '../cloud/httpClient.js';
import type { TelemetryBuffer } from './telemetryBuffer.js';

export interface Uplink {
  endpoint: string;
  /** undefined until the device registered: points wait in the buffer meanwhile */
  deviceKey(): string | undefined;
}

/** points per upload (a few hundred KB of JSON) */
const BATCH_POINTS = 2000;
/** new points gather this long before an upload */
const SEND_DELAY_MS = 1000;

export class TelemetryUploader {
  private timer: NodeJS.Timeout | undefined;
  private draining: Promise<void> | undefined;
  /** points came while a drain ran: look again when it ends */
  private again = false;
  private failures = 0;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly buffer: TelemetryBuffer,
    private readonly uplink: Uplink,
    private readonly log: EventLog,
  ) {}

  /** There are new points: upload soon (unless an upload or a retry is already on its way). */
  kick(delayMs = SEND_DELAY_MS): void {
    if (this.stopped) return;
    if (this.draining !== undefined) this.again = true;
    else this.timer ??= setTimeout(() => this.startDrain(), delayMs).unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.abort.abort();
    await this.draining;
  }

  private startDrain(): void {
    this.timer = undefined;
    this.draining = this.drain().then((retryMs) => {
      this.draining = undefined;
      if (this.stopped) return;
      if (retryMs !== undefined) this.timer = setTimeout(() => this.startDrain(), retryMs).unref();
      else if (this.again) this.kick(0);
      this.again = false;
    });
  }

  /** Sends batches until the buffer is empty; on a failure, how long to wait before trying again. */
  private async drain(): Promise<number | undefined> {
    while (!this.stopped) {
      const key = this.uplink.deviceKey();
      if (!key) return SEND_DELAY_MS; // not registered yet
      const batch = await this.buffer.next(BATCH_POINTS);
      if (!batch) return undefined;
      try {
        const answer = await request(`${this.uplink.endpoint}/device/v1/telemetry`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}` },
          // the stored JSON as it is (the batch id is a uuid: nothing to escape)
          body: Buffer.from(`{"batch":"${batch.id}","points":[${batch.points.join(',')}]}`),
          timeoutMs: 60_000,
          signal: this.abort.signal,
        });
        if (answer.status === 400) this.log.error(`Telemetry: the server refused ${batch.points.length} points, which are dropped: ${describe(answer)}`);
        else if (answer.status !== 200) throw new Error(describe(answer));
        await this.buffer.ack(batch.id);
        if (this.failures) this.log.info('Telemetry upload resumed');
        this.failures = 0;
      } catch (err) {
        if (this.stopped) return undefined;
        const delay = backoffMs(this.failures++);
        const { points } = this.buffer.size;
        this.log.warn(`Telemetry not uploaded: ${(err as Error).message}; ${points} points kept on disk, retrying in ${Math.ceil(delay / 1000)} s`);
        return delay;
      }
    }
    return undefined;
  }
}
