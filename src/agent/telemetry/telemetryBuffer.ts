// Telemetry points waiting for the control plane, on disk (the agent database, so they outlive a
// restart and a write is all or nothing), bounded by the bytes of their JSON: when full, the oldest
// go first, down to 90 % of the bound (a full buffer is not trimmed again at every point). A point
// leaves only once the server acknowledged its batch. The batch id is stored with its points, so a
// batch sent again (its answer was lost, the agent restarted) is the same batch under the same id,
// which the server stores once.
import { randomHex } from '../randomHex.js';
import { sql } from 'kysely';
import type { AgentDb } from '../store/database.js';

export interface TelemetryBatch {
  id: string;
  /** each point's JSON, oldest first */
  points: string[];
}

/** rows per INSERT: 2 bound values each, well within SQLite's 32766 */
const CHUNK = 5000;

export class TelemetryBuffer {
  private constructor(
    private readonly db: AgentDb,
    private readonly maxBytes: number,
    private points: number,
    private bytes: number,
  ) {}

  static async open(db: AgentDb, maxBytes: number): Promise<TelemetryBuffer> {
    const totals = await db
      .selectFrom('telemetry_point')
      .select((eb) => [eb.fn.countAll<number>().as('points'), eb.fn.coalesce(eb.fn.sum<number>('size'), eb.lit(0)).as('bytes')])
      .executeTakeFirstOrThrow();
    return new TelemetryBuffer(db, maxBytes, Number(totals.points), Number(totals.bytes));
  }

  get size(): { points: number; bytes: number } {
    return { points: this.points, bytes: this.bytes };
  }

  /** Stores points (their JSON, oldest first) in one transaction; returns how many older points were dropped to make room. */
  async add(points: readonly string[]): Promise<number> {
    const rows = points.map((point) => ({ point, size: Buffer.byteLength(point) }));
    await this.db.transaction().execute(async (tx) => {
      for (let i = 0; i < rows.length; i += CHUNK)
        await tx
          .insertInto('telemetry_point')
          .values(rows.slice(i, i + CHUNK))
          .execute();
    });
    this.points += rows.length;
    this.bytes += rows.reduce((n, r) => n + r.size, 0);
    return this.bytes > this.maxBytes ? this.trim() : 0;
  }

  /**
   * The batch to send: the one sent before and not acknowledged, else the oldest points (at most
   * `maxPoints`) under a new id. Undefined when there is nothing to send.
   */
  async next(maxPoints: number): Promise<TelemetryBatch | undefined> {
    // (one batch at a time is in flight; the partial index finds it without reading the other points)
    const pending = await this.db.selectFrom('telemetry_point').select('batch').where('batch', 'is not', null).limit(1).executeTakeFirst();
    let id = pending?.batch;
    if (!id) {
      id = await randomHex(16);
      const oldest = this.db.selectFrom('telemetry_point').select('id').where('batch', 'is', null).orderBy('id').limit(maxPoints);
      await this.db.updateTable('telemetry_point').set({ batch: id }).where('id', 'in', oldest).execute();
    }
    const rows = await this.db.selectFrom('telemetry_point').select('point').where('batch', '=', id).orderBy('id').execute();
    return rows.length ? { id, points: rows.map((r) => r.point) } : undefined;
  }

  /** The server has the batch: its points leave the buffer. */
  async ack(id: string): Promise<void> {
    this.forget(await this.db.deleteFrom('telemetry_point').where('batch', '=', id).returning('size').execute());
  }

  /** Drops the oldest points (a batch being sent too: a retry sends what is left of it) until 90 % of the bound is left. */
  private async trim(): Promise<number> {
    const excess = this.bytes - Math.floor(this.maxBytes * 0.9);
    // the newest point to drop: where the running total of sizes, oldest first, reaches the excess
    const { rows } = await sql<{ id: number }>`
      select id from (select id, sum(size) over (order by id) as upto from telemetry_point) as t
      where upto >= ${excess} order by id limit 1`.execute(this.db);
    if (!rows[0]) return 0;
    const gone = await this.db.deleteFrom('telemetry_point').where('id', '<=', rows[0].id).returning('size').execute();
    this.forget(gone);
    return gone.length;
  }

  private forget(gone: { size: number }[]): void {
    this.points -= gone.length;
    this.bytes -= gone.reduce((n, r) => n + r.size, 0);
  }
}
