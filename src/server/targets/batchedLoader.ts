// Coalesces the lookups made in one turn of the event loop into one query per `max` keys: a
// release wakes thousands of long polls at once, and each wants its device's stored target.
export class BatchedLoader<K, V> {
  private pending = new Map<K, ((v: V | undefined, err?: unknown) => void)[]>();

  constructor(
    private readonly loadMany: (keys: K[]) => Promise<Map<K, V>>,
    private readonly max = 500,
  ) {}

  load(key: K): Promise<V | undefined> {
    if (this.pending.size === 0) setImmediate(() => void this.flush());
    return new Promise((resolve, reject) => {
      const waiters = this.pending.get(key) ?? [];
      waiters.push((v, err) => (err ? reject(err) : resolve(v)));
      this.pending.set(key, waiters);
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    const keys = [...batch.keys()];
    for (let i = 0; i < keys.length; i += this.max) {
      const part = keys.slice(i, i + this.max);
      try {
        const found = await this.loadMany(part);
        for (const k of part) for (const settle of batch.get(k)!) settle(found.get(k));
      } catch (err) {
        for (const k of part) for (const settle of batch.get(k)!) settle(undefined, err);
      }
    }
  }
}
