// Devices holding a long poll on this node are there all along, though they call only when it ends:
// their `last_seen_at` is written every HOLDING_SEEN_EVERY_MS (a call marks its device seen as it is
// authenticated: auth/deviceKeys.ts).
import { nowIso, type ServerDb } from '../db/database.js';

/** Devices holding a long poll are marked seen this often. */
const HOLDING_SEEN_EVERY_MS = 60_000;

export class Presence {
  private readonly holding = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly db: ServerDb,
    private readonly onError: (err: Error) => void,
  ) {}

  hold(id: string): void {
    this.holding.set(id, (this.holding.get(id) ?? 0) + 1);
    if (!this.timer) {
      this.timer = setInterval(() => void this.refresh().catch(this.onError), HOLDING_SEEN_EVERY_MS);
      this.timer.unref();
    }
  }

  release(id: string): void {
    const n = (this.holding.get(id) ?? 1) - 1;
    if (n > 0) this.holding.set(id, n);
    else this.holding.delete(id);
    if (!this.holding.size) this.stop();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async refresh(): Promise<void> {
    const ids = [...this.holding.keys()];
    const now = nowIso();
    for (let i = 0; i < ids.length; i += 500) {
      await this.db
        .updateTable('device')
        .set({ last_seen_at: now })
        .where('id', 'in', ids.slice(i, i + 500))
        .execute();
    }
  }
}
