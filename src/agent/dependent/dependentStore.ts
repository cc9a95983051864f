// What the gateway persists about its dependent devices, their owed hooks and the dependent releases
// it saw (tables of migration 0005_dependent). Every change that must hold together is one transaction:
// a device's new target and its update hook, a deleted device and its DELETE hook.
import type { DependentDeviceReport, DependentDeviceTarget } from '../../shared/dependents.js';
import { isoTime } from '../../shared/isoTime.js';
import type { Selectable } from 'kysely';
import type { AgentDb, AgentTables } from '../store/database.js';
import type { DeviceRecord, HookKind } from './hookPlan.js';

export interface DependentDevice extends DeviceRecord {
  /** the gateway's own number for it (balena's `id` in the lists) */
  id: number;
  serverId: number | null;
  name: string;
  deviceType: string;
  note: string | null;
  logsChannel: string;
  state: DependentDeviceReport;
  target: DependentDeviceTarget | null;
  /** per field, the JSON of its value as the control plane last acknowledged it */
  reported: Record<string, string>;
  /** the control plane refused to register it: not tried again until something changes */
  refused: RegisterRefusal | null;
}

/** A permanent refusal of POST /device/v1/dependent-devices (409: another gateway's uuid; 404: an app not given). */
export interface RegisterRefusal {
  status: number;
  message: string;
  /** digest of the dependent target when refused: a 404 is tried again with another target */
  target: string;
}

export interface StoredHook {
  uuid: string;
  kind: HookKind;
  body: unknown;
  attempts: number;
  dueAt: number;
}

export type NewDevice = Pick<DependentDevice, 'uuid' | 'serverId' | 'appId' | 'name' | 'deviceType' | 'note' | 'logsChannel'>;

type Row = Selectable<AgentTables['dependent_device']>;

const toDevice = (r: Row): DependentDevice => ({
  id: r.id,
  uuid: r.uuid,
  serverId: r.server_id,
  appId: r.app_id,
  name: r.name,
  deviceType: r.device_type,
  note: r.note,
  logsChannel: r.logs_channel,
  synced: r.server_id !== null,
  seen: r.seen === 1,
  state: JSON.parse(r.state) as DependentDeviceReport,
  target: r.target ? (JSON.parse(r.target) as DependentDeviceTarget) : null,
  hooked: r.hooked,
  reported: r.reported ? (JSON.parse(r.reported) as Record<string, string>) : {},
  refused: r.refused ? (JSON.parse(r.refused) as RegisterRefusal) : null,
});

export class DependentStore {
  constructor(readonly db: AgentDb) {}

  async devices(): Promise<DependentDevice[]> {
    const rows = await this.db.selectFrom('dependent_device').selectAll().orderBy('id').execute();
    return rows.map((r) => toDevice(r));
  }

  async device(uuid: string): Promise<DependentDevice | undefined> {
    const row = await this.db.selectFrom('dependent_device').selectAll().where('uuid', '=', uuid).executeTakeFirst();
    return row ? toDevice(row) : undefined;
  }

  async insert(d: NewDevice, target: DependentDeviceTarget | null = null): Promise<void> {
    await this.db
      .insertInto('dependent_device')
      .values({
        uuid: d.uuid,
        server_id: d.serverId,
        app_id: d.appId,
        name: d.name,
        device_type: d.deviceType,
        note: d.note,
        logs_channel: d.logsChannel,
        seen: target ? 1 : 0,
        state: JSON.stringify({ status: 'Provisioned' } satisfies DependentDeviceReport),
        target: target ? JSON.stringify(target) : null,
        hooked: null,
        reported: null,
        refused: null,
      })
      .onConflict((oc) => oc.column('uuid').doNothing())
      .execute();
  }

  async setState(uuid: string, state: DependentDeviceReport): Promise<void> {
    await this.db
      .updateTable('dependent_device')
      .set({ state: JSON.stringify(state) })
      .where('uuid', '=', uuid)
      .execute();
  }

  /** What the control plane acknowledged of each device's state (one transaction). */
  async setReported(reported: ReadonlyMap<string, Readonly<Record<string, string>>>): Promise<void> {
    if (!reported.size) return;
    await this.db.transaction().execute(async (tx) => {
      for (const [uuid, fields] of reported)
        await tx
          .updateTable('dependent_device')
          .set({ reported: JSON.stringify(fields) })
          .where('uuid', '=', uuid)
          .execute();
    });
  }

  async setRefused(uuid: string, refused: RegisterRefusal | null): Promise<void> {
    await this.db
      .updateTable('dependent_device')
      .set({ refused: refused ? JSON.stringify(refused) : null })
      .where('uuid', '=', uuid)
      .execute();
  }

  /** The control plane knows the device now (under its id and name). */
  async setSynced(uuid: string, serverId: number, name: string): Promise<void> {
    await this.db.updateTable('dependent_device').set({ server_id: serverId, name, refused: null }).where('uuid', '=', uuid).execute();
  }

  /** A target listed the device: its target (and name) recorded, and with it an update hook if any. */
  async setTarget(uuid: string, target: DependentDeviceTarget, hook?: { key: string; body: unknown; dueAt: number }): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .updateTable('dependent_device')
        .set({ target: JSON.stringify(target), seen: 1, name: target.name, server_id: target.id, ...(hook ? { hooked: hook.key } : {}) })
        .where('uuid', '=', uuid)
        .execute();
      if (hook) await upsertHook(tx, { uuid, kind: 'update', body: hook.body, attempts: 0, dueAt: hook.dueAt });
    });
  }

  /** An update hook for a device no target lists yet (provisioned offline). */
  async setHooked(uuid: string, key: string, body: unknown, dueAt: number): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.updateTable('dependent_device').set({ hooked: key }).where('uuid', '=', uuid).execute();
      await upsertHook(tx, { uuid, kind: 'update', body, attempts: 0, dueAt });
    });
  }

  /** The device was deleted on the control plane: it goes, its other hooks too, and the DELETE hook is owed. */
  async remove(uuid: string, body: unknown, dueAt: number): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('dependent_device').where('uuid', '=', uuid).execute();
      await tx.deleteFrom('dependent_hook').where('uuid', '=', uuid).execute();
      await upsertHook(tx, { uuid, kind: 'delete', body, attempts: 0, dueAt });
    });
  }

  async hooks(): Promise<StoredHook[]> {
    const rows = await this.db.selectFrom('dependent_hook').selectAll().orderBy('due_at').execute();
    return rows.map((r) => ({
      uuid: r.uuid,
      kind: r.kind as HookKind,
      body: r.body === null ? null : JSON.parse(r.body),
      attempts: r.attempts,
      dueAt: r.due_at,
    }));
  }

  async addHook(hook: StoredHook): Promise<void> {
    await upsertHook(this.db, hook);
  }

  /** Ends a hook, unless it was replaced meanwhile (an update hook with another body: a newer target). */
  async endHook(h: Pick<StoredHook, 'uuid' | 'kind' | 'body'>): Promise<void> {
    await this.db
      .deleteFrom('dependent_hook')
      .where('uuid', '=', h.uuid)
      .where('kind', '=', h.kind)
      .where((eb) => (h.kind === 'update' ? eb('body', '=', JSON.stringify(h.body)) : eb.lit(true)))
      .execute();
  }

  async retryHook(h: Pick<StoredHook, 'uuid' | 'kind' | 'body'>, attempts: number, dueAt: number): Promise<void> {
    await this.db
      .updateTable('dependent_hook')
      .set({ attempts, due_at: dueAt })
      .where('uuid', '=', h.uuid)
      .where('kind', '=', h.kind)
      .where((eb) => (h.kind === 'update' ? eb('body', '=', JSON.stringify(h.body)) : eb.lit(true)))
      .execute();
  }

  async recordRelease(appId: number, commit: string, image: string): Promise<void> {
    const seen_at = isoTime();
    await this.db
      .insertInto('dependent_release')
      .values({ app_id: appId, commit, image, seen_at })
      .onConflict((oc) => oc.columns(['app_id', 'commit']).doUpdateSet({ image, seen_at }))
      .execute();
  }

  async releases(): Promise<{ appId: number; commit: string; image: string }[]> {
    const rows = await this.db.selectFrom('dependent_release').selectAll().orderBy('seen_at').execute();
    return rows.map((r) => ({ appId: r.app_id, commit: r.commit, image: r.image }));
  }

  async forgetReleases(keep: (appId: number, commit: string) => boolean): Promise<void> {
    for (const r of await this.releases())
      if (!keep(r.appId, r.commit)) await this.db.deleteFrom('dependent_release').where('app_id', '=', r.appId).where('commit', '=', r.commit).execute();
  }
}

async function upsertHook(db: Pick<AgentDb, 'insertInto'>, h: StoredHook): Promise<void> {
  const body = h.body === null ? null : JSON.stringify(h.body);
  await db
    .insertInto('dependent_hook')
    .values({ uuid: h.uuid, kind: h.kind, body, attempts: h.attempts, due_at: h.dueAt })
    .onConflict((oc) => oc.columns(['uuid', 'kind']).doUpdateSet({ body, attempts: h.attempts, due_at: h.dueAt }))
    .execute();
}
