// Changes to a device an operator makes (its project membership is the project's: projects.ts).
// Its name is part of its target, so a rename refreshes it (targetWrites.ts).
import { NotFoundError } from '../../shared/errors.js';
import type { TargetNotifier } from '../targets/notifier.js';
import type { TargetWrites } from './targetWrites.js';

export class Devices {
  constructor(
    private readonly writes: TargetWrites,
    private readonly notifier: TargetNotifier,
  ) {}

  async rename(id: string, name: string): Promise<void> {
    const { numUpdatedRows } = await this.writes.commit(
      (tx) => tx.updateTable('device').set({ name }).where('id', '=', id).executeTakeFirst(),
      (r) => (r.numUpdatedRows ? [id] : []),
    );
    if (!numUpdatedRows) throw new NotFoundError(`no device ${id}`);
  }

  /** What refers to it goes with it (foreign keys cascade). */
  async remove(id: string): Promise<void> {
    const { numDeletedRows } = await this.writes.db.deleteFrom('device').where('id', '=', id).executeTakeFirst();
    if (!numDeletedRows) throw new NotFoundError(`no device ${id}`);
    await this.notifier.notify([id]); // a poll it holds ends (401: its key is gone)
  }
}
