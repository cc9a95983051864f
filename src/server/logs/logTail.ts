// Live tails of device logs as Server-Sent Events: the newest lines first (the backlog), then each
// line as it is stored, whichever server node it arrived on (an upload wakes the device's tails on
// every node through the notifier). Each event's id is the line's: a client reconnecting with
// Last-Event-ID continues after it. A comment every heartbeat keeps proxies from closing a quiet
// stream; a tail of a device that was deleted ends.
import type { FastifyReply } from 'fastify';
import { HeldRequests, listenThenLook } from '../longPoll.js';
import type { DeviceNotifier } from '../wakeups/notifier.js';
import { logsKey, type DeviceLogs, type LogFilter, type StoredLogLine } from './deviceLogs.js';

const HEARTBEAT_MS = 15_000;
/** Lines read at a time. */
const PAGE = 500;
/** A client reading slower than lines come: the tail waits for it once this much is unsent. */
const MAX_UNSENT = 1024 * 1024;

export interface TailRequest extends LogFilter {
  deviceId: string;
  /** continue after this line (Last-Event-ID) … */
  afterId?: number;
  /** … else start with the newest this many lines */
  backlog: number;
}

export interface LogTailsOptions {
  logs: DeviceLogs;
  notifier: DeviceNotifier;
  /** whether what the tail follows (the device, or its dependent device) still exists */
  exists(t: TailRequest): Promise<boolean>;
  onError(err: Error): void;
  heartbeatMs?: number;
}

export class LogTails {
  private readonly open = new HeldRequests();

  constructor(private readonly o: LogTailsOptions) {}

  /** Answers with the tail, until the client goes, the device is deleted or close() is called. */
  async serve(reply: FastifyReply, t: TailRequest): Promise<void> {
    reply.hijack();
    const res = reply.raw;
    const tail = this.open.hold(reply.request, reply);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    const { deviceId, service, since, dependent } = t;
    const filter = {
      ...(service !== undefined ? { service } : {}),
      ...(since !== undefined ? { since } : {}),
      ...(dependent !== undefined ? { dependent } : {}),
    };
    const send = (lines: StoredLogLine[]) => lines.length && res.write(lines.map((l) => `id: ${l.id}\ndata: ${JSON.stringify(l)}\n\n`).join(''));
    try {
      let last = t.afterId;
      if (last === undefined) {
        last = await this.o.logs.lastId(deviceId);
        if (t.backlog) send(await this.o.logs.read(deviceId, { ...filter, upTo: last, limit: t.backlog }));
      }
      while (!tail.signal.aborted) {
        // listen first, then read: a line stored in between wakes the next round
        const deviceGone = await listenThenLook(this.o.notifier, logsKey(deviceId), this.o.heartbeatMs ?? HEARTBEAT_MS, tail.signal, async (woken) => {
          // up to the newest line now, so that lines the filter leaves out are not read again
          const upTo = await this.o.logs.lastId(deviceId);
          const lines = await this.o.logs.read(deviceId, { ...filter, afterId: last, upTo, limit: PAGE });
          send(lines);
          last = lines.length === PAGE ? lines.at(-1)!.id : Math.max(last!, upTo);
          if (res.writableLength > MAX_UNSENT) await drained(res, tail.signal);
          if (lines.length === PAGE || (await woken) || tail.signal.aborted) return false;
          if (!(await this.o.exists(t))) return true;
          res.write(': keep-alive\n\n');
          return false;
        });
        if (deviceGone) break;
      }
    } catch (err) {
      if (!tail.signal.aborted) this.o.onError(err as Error);
    } finally {
      res.end();
      tail.release();
    }
  }

  /** Ends every tail (the server is closing: clients reconnect, to another node or after the restart). */
  close(): Promise<void> {
    return this.open.close();
  }
}

const drained = (res: NodeJS.WritableStream, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.once('drain', done);
    signal.addEventListener('abort', done, { once: true });
  });
