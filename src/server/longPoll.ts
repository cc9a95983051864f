// The concurrency every held request shares (target and command long polls, supervisor proxy calls,
// log tails), in one place: a held request stops when its client hangs up or the server closes, the
// server's close waits until each has answered, and a wait for a change listens before it looks.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { DeviceNotifier } from './wakeups/notifier.js';

export interface Held {
  /** aborts when the client hangs up or the server closes */
  readonly signal: AbortSignal;
  /** the client hung up (not: the server closes) */
  hungUp(): boolean;
  /** the handler is done with the request: call in a `finally` */
  release(): void;
}

/** The requests one route plugin holds; `close()` belongs in its `preClose` hook. */
export class HeldRequests {
  private readonly held = new Set<{ stop: AbortController; answered: Promise<void> }>();
  private closingNow = false;

  /** The server is closing: held requests answer now, new ones should not wait. */
  get closing(): boolean {
    return this.closingNow;
  }

  /** Tracks the request until its answer is out (or its connection closed). */
  hold(req: FastifyRequest, reply: FastifyReply): Held {
    const stop = new AbortController();
    let settle!: () => void;
    const entry = { stop, answered: new Promise<void>((resolve) => (settle = resolve)) };
    const res = reply.raw;
    res.once('close', settle);
    res.once('finish', settle);
    const onClose = () => {
      if (!res.writableFinished) stop.abort();
    };
    res.once('close', onClose);
    const gone = () => res.destroyed || !!req.raw.socket?.destroyed;
    if (gone()) {
      // hung up already (e.g. while being authenticated): its 'close' came and went
      stop.abort();
      settle();
    }
    this.held.add(entry);
    return {
      signal: stop.signal,
      hungUp: () => gone() || (stop.signal.aborted && !this.closingNow),
      release: () => {
        res.off('close', onClose);
        // tracked until the answer is out, so that closing the server waits for it
        void entry.answered.then(() => this.held.delete(entry));
      },
    };
  }

  /** Stops every held request and waits until each has answered. */
  async close(): Promise<void> {
    this.closingNow = true;
    for (const h of this.held) h.stop.abort();
    await Promise.all([...this.held].map((h) => h.answered));
  }
}

/** Answers nothing to a client that hung up. */
export function dropAnswer(reply: FastifyReply): FastifyReply {
  reply.hijack();
  reply.raw.destroy();
  return reply;
}

/**
 * Listens for a wake-up of `key` (for `timeoutMs`, until `stop`) and only then runs `look`, which gets
 * the wake-up (true: `key` may have changed; false: time is up or stopped): a change between listening
 * and looking is not missed.
 */
export async function listenThenLook<T>(
  notifier: DeviceNotifier,
  key: string,
  timeoutMs: number,
  stop: AbortSignal,
  look: (woken: Promise<boolean>) => Promise<T>,
): Promise<T> {
  const cancel = new AbortController();
  const relay = () => cancel.abort();
  stop.addEventListener('abort', relay, { once: true });
  const woken = timeoutMs > 0 && !stop.aborted ? notifier.waitForChange(key, timeoutMs, cancel.signal) : Promise.resolve(false);
  try {
    return await look(woken);
  } finally {
    cancel.abort();
    stop.removeEventListener('abort', relay);
  }
}

/**
 * Looks until `look` finds something (not undefined), looking again each time `key` is notified, until
 * `deadline` (ms since the epoch) or `stop`. Looks at least once unless already stopped.
 */
export async function waitFor<T>(
  notifier: DeviceNotifier,
  key: string,
  deadline: number,
  stop: AbortSignal,
  look: () => Promise<T | undefined>,
): Promise<T | undefined> {
  while (!stop.aborted) {
    const found = await listenThenLook(notifier, key, deadline - Date.now(), stop, async (woken) => {
      const now = await look();
      return now !== undefined ? { now } : (await woken) ? undefined : { now: undefined };
    });
    if (found) return found.now;
  }
  return undefined;
}
