// Devices as a whole: registration, a rename, removal (later changes to its project membership are
// the project's: projects.ts). Its name and project are part of its target, which the writes
// refresh (targetWrites.ts).
import type { Insertable } from 'kysely';
import { NotFoundError, ValidationError } from '../../shared/errors.js';
import { inChunks, type ServerDb, type ServerTables } from '../db/database.js';
import type { DeviceNotifier } from '../wakeups/notifier.js';
import type { TargetWrites } from './targetWrites.js';

/** A device as the operator API lists it: its row, the releases deployed on it, its projects. */
export interface DeviceListing {
  row: DeviceRow;
  /** ids of the releases deployed successfully on it */
  releases: number[];
  projects: number[];
}
export type DeviceRow = Pick<
  ServerTables['device'],
  'id' | 'unit_id' | 'name' | 'device_type' | 'last_seen_at' | 'agent_version' | 'state_json' | 'target_error'
>;
const deviceColumns = ['id', 'unit_id', 'name', 'device_type', 'last_seen_at', 'agent_version', 'state_json', 'target_error'] as const;
/** A device a call is addressed to: its id and unit id (uuid). */
export type DeviceAddress = Pick<ServerTables['device'], 'id' | 'unit_id'>;

export class Devices {
  private readonly db: ServerDb;

  constructor(
    private readonly writes: TargetWrites,
    private readonly notifier: DeviceNotifier,
  ) {
    this.db = writes.db;
  }

  async exists(id: string): Promise<boolean> {
    return (await this.db.selectFrom('device').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
  }

  async list(): Promise<DeviceListing[]> {
    return this.listings(await this.db.selectFrom('device').select(deviceColumns).orderBy('created_at').orderBy('id').execute());
  }

  async get(id: string): Promise<DeviceListing> {
    const row = await this.db.selectFrom('device').select(deviceColumns).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError(`no device ${id}`);
    return (await this.listings([row]))[0]!;
  }

  /** The device with this unit id (uuid, lower case) or server id: none or one. */
  async find(by: { uuid: string } | { id: string }): Promise<DeviceAddress[]> {
    const [column, value] = 'uuid' in by ? (['unit_id', by.uuid] as const) : (['id', by.id] as const);
    return this.db.selectFrom('device').select(['id', 'unit_id']).where(column, '=', value).execute();
  }

  /** The devices of a project, oldest first; an unknown project is a NotFoundError. */
  async ofProject(projectId: number): Promise<DeviceAddress[]> {
    if (!(await this.db.selectFrom('project').select('id').where('id', '=', projectId).executeTakeFirst())) throw new NotFoundError(`no project ${projectId}`);
    return this.db
      .selectFrom('project_device')
      .innerJoin('device', 'device.id', 'project_device.device_id')
      .select(['device.id', 'device.unit_id'])
      .where('project_device.project_id', '=', projectId)
      .orderBy('device.created_at')
      .orderBy('device.id')
      .execute();
  }

  /** Why its latest target could not be built; undefined when the device is gone. */
  async targetError(id: string): Promise<string | null | undefined> {
    return (await this.db.selectFrom('device').select('target_error').where('id', '=', id).executeTakeFirst())?.target_error;
  }

  /**
   * A repeated registration: the device with this uuid gets a new key, only if `provisioningKeyId`
   * made it and it has never used its key. Its id, or undefined when the uuid is unknown, null
   * when the repeat is refused.
   */
  async rekey(uuid: string, provisioningKeyId: number, keyHash: string): Promise<string | null | undefined> {
    const known = await this.db.selectFrom('device').select('id').where('unit_id', '=', uuid).executeTakeFirst();
    if (!known) return undefined;
    const { numUpdatedRows } = await this.db
      .updateTable('device')
      .set({ device_key_hash: keyHash })
      .where('id', '=', known.id)
      .where('provisioning_key_id', '=', provisioningKeyId)
      .where('key_used_at', 'is', null)
      .executeTakeFirst();
    return numUpdatedRows ? known.id : null;
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

  private async listings(rows: DeviceRow[]): Promise<DeviceListing[]> {
    const releases = new Map<string, number[]>();
    const projects = new Map<string, number[]>();
    for (const ids of inChunks(
      rows.map((r) => r.id),
      500,
    )) {
      const deployed = await this.db
        .selectFrom('deployment')
        .select(['device_id', 'release_id'])
        .where('state', '=', 'succeeded')
        .where('device_id', 'in', ids)
        .orderBy('release_id')
        .execute();
      for (const d of deployed) releases.set(d.device_id, [...(releases.get(d.device_id) ?? []), d.release_id]);
      const member = await this.db
        .selectFrom('project_device')
        .select(['device_id', 'project_id'])
        .where('device_id', 'in', ids)
        .orderBy('project_id')
        .execute();
      for (const m of member) projects.set(m.device_id, [...(projects.get(m.device_id) ?? []), m.project_id]);
    }
    return rows.map((row) => ({ row, releases: releases.get(row.id) ?? [], projects: projects.get(row.id) ?? [] }));
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
