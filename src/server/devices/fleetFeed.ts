// The fleet's live view as Server-Sent Events (GET /dongle/devices/events/, the dashboard's fleet
// page): a snapshot of every device, then each device whose listing changed and each one removed.
// One look at the fleet per second (or, for a fleet that takes longer to read, a pause twice as long
// as the look) serves every open stream of this node, whatever their number,
// and it runs only while a stream is open; it reads the database, so a change made on any node
// shows. A client reading slower than the fleet changes is not buffered for without bound: once
// MAX_UNSENT bytes wait for it, its deltas are dropped and it gets a fresh snapshot when it drained.
// A stream ends when its token stops being valid (checked every heartbeat).
import type { FastifyReply } from 'fastify';
import { HeldRequests } from '../longPoll.js';

const INTERVAL_MS = 1000;
const HEARTBEAT_MS = 15_000;
/** Bytes waiting for a slow client beyond which it gets a snapshot later instead of the deltas now. */
const MAX_UNSENT = 1024 * 1024;

/** A device as the stream sends it (the operator API's listing). */
export interface FleetDevice {
  id: string;
}

export interface FleetTimings {
  intervalMs?: number;
  heartbeatMs?: number;
  maxUnsentBytes?: number;
}

export interface FleetFeedOptions extends FleetTimings {
  list(): Promise<FleetDevice[]>;
  onError(err: Error): void;
}

interface Stream {
  res: FastifyReply['raw'];
  /** deltas were dropped: it gets a snapshot once drained */
  behind: boolean;
  /** it has had its snapshot */
  started: boolean;
}

export class FleetFeed {
  private readonly open = new HeldRequests();
  private readonly streams = new Set<Stream>();
  /** each device's listing as last sent, as JSON */
  private last: Map<string, string> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private looking = false;

  constructor(private readonly o: FleetFeedOptions) {}

  /** Answers with the stream until the client goes, `stillValid` says no, or close() is called. */
  async serve(reply: FastifyReply, stillValid: () => Promise<boolean>): Promise<void> {
    reply.hijack();
    const res = reply.raw;
    const held = this.open.hold(reply.request, reply);
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
    res.flushHeaders();
    const stream: Stream = { res, behind: false, started: false };
    const onDrain = () => {
      if (stream.behind && this.last) this.snapshot(stream);
    };
    res.on('drain', onDrain);
    this.streams.add(stream);
    // a look under way or due sends it its snapshot; else the fleet as last seen does, at once
    if (!this.last) this.schedule(0);
    else if (!this.looking) this.snapshot(stream);
    try {
      while (!held.signal.aborted) {
        await sleep(this.o.heartbeatMs ?? HEARTBEAT_MS, held.signal);
        if (held.signal.aborted || !(await stillValid())) break;
        res.write(': keep-alive\n\n');
      }
    } catch (err) {
      if (!held.signal.aborted) this.o.onError(err as Error);
    } finally {
      res.off('drain', onDrain);
      this.streams.delete(stream);
      if (!this.streams.size) this.stop();
      res.end();
      held.release();
    }
  }

  /** Ends every stream (the server is closing). */
  async close(): Promise<void> {
    this.stop();
    await this.open.close();
  }

  private stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.last = undefined;
  }

  private schedule(ms: number): void {
    if (this.looking || !this.streams.size) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.look(), ms);
    this.timer.unref();
  }

  private async look(): Promise<void> {
    this.looking = true;
    const started = performance.now();
    try {
      const now = new Map((await this.o.list()).map((d) => [d.id, JSON.stringify(d)]));
      const before = this.last;
      this.last = now;
      const changed: string[] = [];
      const removed: string[] = [];
      if (before) {
        for (const [id, json] of now) if (before.get(id) !== json) changed.push(json);
        for (const id of before.keys()) if (!now.has(id)) removed.push(id);
      }
      const delta =
        changed.map((d) => `event: device\ndata: ${d}\n\n`).join('') + removed.map((id) => `event: removed\ndata: ${JSON.stringify({ id })}\n\n`).join('');
      for (const s of this.streams) {
        if (!s.started || s.behind) {
          if (s.res.writableLength <= this.max()) this.snapshot(s);
        } else if (delta) this.send(s, delta);
      }
    } catch (err) {
      this.o.onError(err as Error);
    } finally {
      this.looking = false;
      // a big fleet on a busy node: at most a third of the time goes to looking
      this.schedule(Math.max(this.o.intervalMs ?? INTERVAL_MS, 2 * (performance.now() - started)));
    }
  }

  private snapshot(s: Stream): void {
    s.behind = false;
    s.started = true;
    this.send(s, `event: snapshot\ndata: [${[...this.last!.values()].join(',')}]\n\n`);
  }

  private send(s: Stream, text: string): void {
    if (s.res.writableLength > this.max()) s.behind = true;
    else s.res.write(text);
  }

  private max(): number {
    return this.o.maxUnsentBytes ?? MAX_UNSENT;
  }
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
