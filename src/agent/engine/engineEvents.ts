// The engine's container events the agent follows: a supervised container died or was removed.
// Each wakes the reconciler at once; their count (the generation) tells readers whether what they
// learnt from the engine since may have changed: the reconciler's last read, a settle verdict's inspect.
import type Docker from 'dockerode';
import { LABEL, SUPERVISED_FILTER } from './labels.js';

/** Reconnects until stopped; events missed while disconnected count as a change. */
export class EngineEvents {
  private events: NodeJS.ReadableStream | undefined;
  private stopped = false;
  private count = 0;

  constructor(
    private readonly docker: Docker,
    /** the agent's engine scope: only its own containers' events count */
    private readonly scope: string | undefined,
    private readonly onEvent: () => void,
  ) {}

  /**
   * Changes each time a followed event comes (or may have been missed); undefined while not
   * following, when nothing read from the engine may be taken as still true.
   */
  get generation(): number | undefined {
    return this.events ? this.count : undefined;
  }

  watch(): void {
    if (this.stopped) return;
    const retry = () => {
      this.events = undefined;
      if (!this.stopped) setTimeout(() => this.watch(), 1000).unref();
    };
    const label = [...SUPERVISED_FILTER.label, ...(this.scope ? [`${LABEL.scope}=${this.scope}`] : [])];
    this.docker.getEvents({ filters: { type: ['container'], event: ['die', 'destroy'], label } }).then((stream) => {
      if (this.stopped) {
        (stream as unknown as { destroy(): void }).destroy();
        return;
      }
      this.count++; // events may have been missed before (or between) connections
      this.events = stream;
      stream.on('data', () => {
        this.count++;
        this.onEvent();
      });
      stream.on('error', retry);
      stream.on('end', retry);
    }, retry);
  }

  stop(): void {
    this.stopped = true;
    (this.events as { destroy?: () => void } | undefined)?.destroy?.();
    this.events = undefined;
  }
}
