// DeviceNotifier for a single server process (the embedded SQLite set-up): waiters in memory. The
// PostgreSQL notifier keeps its node's waiters in one of these too.
import type { DeviceNotifier } from './notifier.js';

export class LocalNotifier implements DeviceNotifier {
  /** deviceId → wake functions of its pending polls */
  private readonly waiters = new Map<string, Set<() => void>>();

  async notify(deviceIds: Iterable<string>): Promise<void> {
    for (const id of deviceIds) for (const wake of [...(this.waiters.get(id) ?? [])]) wake();
  }

  waitForChange(deviceId: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve(false);
      let set = this.waiters.get(deviceId);
      if (!set) this.waiters.set(deviceId, (set = new Set()));
      const done = (changed: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        set!.delete(wake);
        if (!set!.size) this.waiters.delete(deviceId);
        resolve(changed);
      };
      const wake = () => done(true);
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), timeoutMs);
      set.add(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Pending waits whose key starts with `prefix`. */
  waiting(prefix = ''): number {
    let n = 0;
    for (const [key, set] of this.waiters) if (key.startsWith(prefix)) n += set.size;
    return n;
  }

  /** Wakes every waiter (each re-reads what it waits for). */
  wakeAll(): void {
    for (const set of [...this.waiters.values()]) for (const wake of [...set]) wake();
  }

  async close(): Promise<void> {
    this.wakeAll();
  }
}
