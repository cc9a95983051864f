// Retry backoff of failed steps: each failure doubles the wait before the next attempt, up to a
// bound; entries long expired go, so that steps no longer planned do not pile up over months.

export interface BackoffEntry {
  retryAt: number;
  attempts: number;
}

export class Backoff<K> {
  private readonly entries = new Map<K, BackoffEntry>();

  constructor(
    private readonly baseMs: number,
    private readonly maxMs: number,
  ) {}

  /** A failed attempt: the next one waits twice as long as the last did (from baseMs to maxMs); the wait. */
  failed(key: K, now = Date.now()): number {
    const attempts = (this.entries.get(key)?.attempts ?? 0) + 1;
    const delay = Math.min(this.baseMs * 2 ** (attempts - 1), this.maxMs);
    this.entries.set(key, { retryAt: now + delay, attempts });
    return delay;
  }

  /** When `key` may be attempted again (undefined: no failure on record). */
  retryAt(key: K): number | undefined {
    return this.entries.get(key)?.retryAt;
  }

  entry(key: K): BackoffEntry | undefined {
    return this.entries.get(key);
  }

  /** Takes over another backoff's record (a service's failure counts with its step's). */
  set(key: K, entry: BackoffEntry): void {
    this.entries.set(key, entry);
  }

  delete(key: K): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  retryAts(): Map<K, number> {
    return new Map([...this.entries].map(([k, v]) => [k, v.retryAt]));
  }

  /** Drops entries that expired before `before`. */
  prune(before: number): void {
    for (const [k, v] of this.entries) if (v.retryAt < before) this.entries.delete(k);
  }
}
