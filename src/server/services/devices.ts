// Devices as a whole: registration, a rename, removal (later changes to its project membership are
// the project's: projects.ts). Its name and project are part of its target, which the writes
// refresh (targetWrites.ts).
import type { Insertable } from 'kysely';
import { NotFoundError, ValidationError } from '../../shared/errors.js';
import { inChunks, type ServerDb, type ServerTables } from '../db/database.js';
import type { DeviceNotifier } from '../wakeups/notifier.js';
import type { TargetWrites } from './targetWrites.js';

export class Devices {
  constructor(
    private readonly writes: TargetWrites,
    private readonly notifier: DeviceNotifier,
  ) {}

  async exists(id: string): Promise<boolean> {
    return (await this.writes.db.selectFrom('device').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
  }

  /** A new device, a member of project `projectId` when given: its target is built at once. */
  async register(device: Insertable<ServerTables['device']>, projectId: number | null): Promise<void> {
    await this.writes.commit(
      async (tx) => {
        await tx.insertInto('device').values(device).execute();
        if (projectId !== null) await tx.insertInto('project_device').values({ project_id: projectId, device_id: device.id }).execute();
      },
      () => [device.id],
    );
  }

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

/** A device named in a request (`/devices/<i>` of `entity`) that does not exist is the caller's mistake: a 400 naming it. */
export async function refuseUnknownDevices(db: ServerDb, devices: readonly string[], entity: string): Promise<void> {
  const known = new Set<string>();
  for (const part of inChunks([...devices])) {
    for (const d of await db.selectFrom('device').select('id').where('id', 'in', part).execute()) known.add(d.id);
  }
  const index = devices.findIndex((d) => !known.has(d));
  if (index >= 0) throw new ValidationError(`/devices/${index}`, `no device ${devices[index]}`, entity);
}
