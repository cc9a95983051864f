// Dependent devices: provisioned by a gateway (its device key) into one of the dependent apps its
// target gives it, managed by operators (a pinned commit, environment, config, name, note), reported
// on by their gateway. What the operator sets is part of the gateway's target, so those writes
// refresh it (targetWrites.ts); a gateway's reports and provisioning speak only for its own devices.
import { randomBytes, randomInt } from 'node:crypto';
import type { Selectable } from 'kysely';
import {
  MAX_DEPENDENT_DEVICES,
  type DependentDeviceReport,
  type DependentProvision,
  type DependentProvisioned,
  type DependentTarget,
} from '../../shared/dependents.js';
import { ConflictError, NotFoundError, ValidationError } from '../../shared/errors.js';
import { inChunks, nowIso, type ServerDb, type ServerTables } from '../db/database.js';
import type { TargetWrites } from './targetWrites.js';

type Row = Selectable<ServerTables['dependent_device']>;
type StrMap = Record<string, string>;

export interface DependentDevice {
  id: number;
  uuid: string;
  name: string;
  note: string | null;
  device_type: string;
  app: number;
  /** the id of its gateway device */
  gateway: string;
  /** what its gateway last reported it runs */
  commit: string | null;
  /** what it should run: the commit it is pinned to, else its app's newest */
  target_commit: string | null;
  pinned: boolean;
  status: string | null;
  is_online: boolean | null;
  last_seen: string | null;
  download_progress: number | null;
  environment: StrMap | null;
  target_environment: StrMap;
  config: StrMap | null;
  target_config: StrMap;
  created_at: string;
}
export interface DependentDeviceFilter {
  app?: number;
  gateway?: string;
  online?: boolean;
}
export interface DependentDevicePatch {
  target_commit?: string | null;
  environment?: StrMap;
  config?: StrMap;
  name?: string;
  note?: string | null;
}

const ADJECTIVES = ['blue', 'wild', 'quiet', 'bold', 'calm', 'dark', 'bright', 'cool', 'dry', 'fast', 'green', 'late', 'lively', 'misty', 'proud', 'red'];
const NOUNS = ['sun', 'paper', 'river', 'stone', 'field', 'cloud', 'leaf', 'moon', 'wave', 'forest', 'snow', 'wind', 'star', 'hill', 'lake', 'fire'];
/** balena's kind of name: adjective-noun. */
export const dependentName = () => `${ADJECTIVES[randomInt(ADJECTIVES.length)]}-${NOUNS[randomInt(NOUNS.length)]}`;

export class DependentDevices {
  private readonly db: ServerDb;

  constructor(private readonly writes: TargetWrites) {
    this.db = writes.db;
  }

  async list(filter: DependentDeviceFilter = {}): Promise<DependentDevice[]> {
    let q = this.db.selectFrom('dependent_device').selectAll();
    if (filter.app !== undefined) q = q.where('app_id', '=', filter.app);
    if (filter.gateway !== undefined) q = q.where('gateway_id', '=', filter.gateway);
    if (filter.online !== undefined)
      q = filter.online ? q.where('is_online', '=', 1) : q.where((eb) => eb.or([eb('is_online', '=', 0), eb('is_online', 'is', null)]));
    return this.entities(await q.orderBy('id').execute());
  }

  async get(uuid: string): Promise<DependentDevice> {
    return (await this.entities([await this.row(uuid)]))[0]!;
  }

  async exists(uuid: string): Promise<boolean> {
    return (await this.db.selectFrom('dependent_device').select('id').where('uuid', '=', uuid).executeTakeFirst()) !== undefined;
  }

  /** Its gateway's id, for reading its logs (404 for an unknown uuid). */
  async gatewayOf(uuid: string): Promise<string> {
    return (await this.row(uuid)).gateway_id;
  }

  /** A pin must be a commit of its app's releases (400 naming `/target_commit`). */
  async patch(uuid: string, body: DependentDevicePatch): Promise<DependentDevice> {
    const row = await this.row(uuid);
    if (body.target_commit) {
      const known = await this.db
        .selectFrom('dependent_release')
        .select('id')
        .where('app_id', '=', row.app_id)
        .where('commit', '=', body.target_commit)
        .executeTakeFirst();
      if (!known) throw new ValidationError('/target_commit', `no release of dependent app ${row.app_id} has commit ${body.target_commit}`, 'dependent device');
    }
    const set = {
      ...(body.target_commit !== undefined ? { pinned_commit: body.target_commit } : {}),
      ...(body.environment !== undefined ? { target_environment: JSON.stringify(body.environment) } : {}),
      ...(body.config !== undefined ? { target_config: JSON.stringify(body.config) } : {}),
      ...(body.name !== undefined ? { name: body.name } : {}),
      ...(body.note !== undefined ? { note: body.note } : {}),
    };
    if (Object.keys(set).length)
      await this.writes.commit(
        (tx) => tx.updateTable('dependent_device').set(set).where('id', '=', row.id).execute(),
        () => [row.gateway_id],
      );
    return this.get(uuid);
  }

  /**
   * Leaves its gateway's target (which tells the gateway app), a tombstone in its place (the target's
   * `deleted`: a gateway that never saw it listed learns it too); its gateway's id, for its logs.
   */
  async remove(uuid: string): Promise<string> {
    const row = await this.row(uuid);
    const gateway_id = row.gateway_id;
    await this.writes.commit(
      async (tx) => {
        await tx.deleteFrom('dependent_device').where('id', '=', row.id).execute();
        await tx.insertInto('dependent_tombstone').values({ uuid, gateway_id, deleted_at: nowIso() }).execute();
        // bounded as the devices are: the newest of the gateway stay
        const old = await tx
          .selectFrom('dependent_tombstone')
          .select('uuid')
          .where('gateway_id', '=', gateway_id)
          .orderBy('deleted_at', 'desc')
          .orderBy('uuid')
          .limit(MAX_DEPENDENT_DEVICES)
          .offset(MAX_DEPENDENT_DEVICES)
          .execute();
        if (old.length)
          await tx
            .deleteFrom('dependent_tombstone')
            .where(
              'uuid',
              'in',
              old.map((o) => o.uuid),
            )
            .execute();
      },
      () => [gateway_id],
    );
    return gateway_id;
  }

  /**
   * A gateway provisions a device into one of the dependent apps its target gives it (else 404).
   * Idempotent by uuid: the same uuid again from the same gateway and app is the same device
   * (`created: false`); a uuid of another gateway's device, or of another app, is a 409, as is a
   * new device beyond MAX_DEPENDENT_DEVICES of the gateway.
   */
  async provision(gatewayId: string, body: DependentProvision): Promise<{ created: boolean; device: DependentProvisioned }> {
    const app = await this.gatewayApp(gatewayId, body.app_id);
    const uuid = body.uuid ?? randomBytes(16).toString('hex');
    const known = await this.repeat(gatewayId, body.app_id, uuid);
    if (known) return { created: false, device: known };
    // a deleted device is not brought back by its gateway registering it late (provisioned offline, or an answer lost)
    if (await this.db.selectFrom('dependent_tombstone').select('uuid').where('uuid', '=', uuid).executeTakeFirst())
      throw new ConflictError(`dependent device ${uuid} was deleted`);
    // a gateway's target holds at most so many (dependents.ts)
    const { n } = await this.db
      .selectFrom('dependent_device')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('gateway_id', '=', gatewayId)
      .executeTakeFirstOrThrow();
    if (Number(n) >= MAX_DEPENDENT_DEVICES) throw new ConflictError(`this gateway has ${MAX_DEPENDENT_DEVICES} dependent devices, the most it may have`);
    const values = {
      uuid,
      app_id: body.app_id,
      gateway_id: gatewayId,
      name: body.name ?? dependentName(),
      note: null,
      device_type: body.device_type ?? app.device_type,
      pinned_commit: null,
      target_environment: '{}',
      target_config: '{}',
      commit: null,
      status: null,
      is_online: null,
      download_progress: null,
      environment: null,
      config: null,
      last_seen: null,
      created_at: nowIso(),
    };
    try {
      await this.writes.commit(
        (tx) => tx.insertInto('dependent_device').values(values).execute(),
        () => [gatewayId],
      );
    } catch (err) {
      // the same uuid provisioned twice at once: the second finds the first
      const again = await this.repeat(gatewayId, body.app_id, uuid);
      if (again) return { created: false, device: again };
      throw err;
    }
    return { created: true, device: (await this.repeat(gatewayId, body.app_id, uuid))! };
  }

  /**
   * Merges a gateway's report of its devices (what changed) into what is stored. Devices that are not
   * the gateway's own (unknown, or another gateway's) are ignored: a gateway speaks only for its own.
   */
  async report(gatewayId: string, reports: Record<string, DependentDeviceReport>): Promise<void> {
    const uuids = Object.keys(reports);
    if (!uuids.length) return;
    const now = nowIso();
    await this.db.transaction().execute(async (tx) => {
      for (const part of inChunks(uuids)) {
        const own = await tx.selectFrom('dependent_device').select(['id', 'uuid']).where('gateway_id', '=', gatewayId).where('uuid', 'in', part).execute();
        for (const { id, uuid } of own) {
          const r = reports[uuid]!;
          const set = {
            ...(r.commit !== undefined ? { commit: r.commit } : {}),
            ...(r.status !== undefined ? { status: r.status } : {}),
            ...(r.is_online !== undefined ? { is_online: r.is_online === null ? null : Number(r.is_online) } : {}),
            ...(r.download_progress !== undefined ? { download_progress: r.download_progress } : {}),
            ...(r.environment !== undefined ? { environment: JSON.stringify(r.environment) } : {}),
            ...(r.config !== undefined ? { config: JSON.stringify(r.config) } : {}),
            last_seen: r.last_seen !== undefined ? new Date(r.last_seen).toISOString() : now,
          };
          await tx.updateTable('dependent_device').set(set).where('id', '=', id).execute();
        }
      }
    });
  }

  /** Of these uuids, those of another gateway's devices (their log lines are not this gateway's to write). */
  async foreign(gatewayId: string, uuids: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (const part of inChunks([...new Set(uuids)])) {
      const rows = await this.db.selectFrom('dependent_device').select('uuid').where('uuid', 'in', part).where('gateway_id', '!=', gatewayId).execute();
      for (const r of rows) out.add(r.uuid);
    }
    return out;
  }

  /** The dependent app as the gateway's stored target gives it; 404 when it does not. */
  private async gatewayApp(gatewayId: string, appId: number): Promise<DependentTarget['apps'][string]> {
    const row = await this.db.selectFrom('device_target').select('target_json').where('device_id', '=', gatewayId).executeTakeFirst();
    const apps = row ? (JSON.parse(row.target_json) as { dependent?: DependentTarget }).dependent?.apps : undefined;
    const app = apps?.[String(appId)];
    if (!app) throw new NotFoundError(`no dependent app ${appId} for this gateway (its target lists ${Object.keys(apps ?? {}).join(', ') || 'none'})`);
    return app;
  }

  /** The device with this uuid when it is this gateway's, of this app; a 409 when it is someone else's. */
  private async repeat(gatewayId: string, appId: number, uuid: string): Promise<DependentProvisioned | undefined> {
    const row = await this.db.selectFrom('dependent_device').selectAll().where('uuid', '=', uuid).executeTakeFirst();
    if (!row) return undefined;
    if (row.gateway_id !== gatewayId) throw new ConflictError(`uuid: dependent device ${uuid} belongs to another gateway`);
    if (row.app_id !== appId) throw new ConflictError(`uuid: dependent device ${uuid} is a device of dependent app ${row.app_id}`);
    return { id: row.id, uuid: row.uuid, name: row.name, note: row.note, device_type: row.device_type, app_id: row.app_id };
  }

  private async row(uuid: string): Promise<Row> {
    const row = await this.db.selectFrom('dependent_device').selectAll().where('uuid', '=', uuid).executeTakeFirst();
    if (!row) throw new NotFoundError(`no dependent device ${uuid}`);
    return row;
  }

  private async entities(rows: Row[]): Promise<DependentDevice[]> {
    const appIds = [...new Set(rows.map((r) => r.app_id))];
    const newest = new Map<number, string>();
    for (const part of inChunks(appIds)) {
      const latest = await this.db
        .selectFrom('dependent_release')
        .select(['app_id', 'commit'])
        .where('id', 'in', (eb) =>
          eb
            .selectFrom('dependent_release')
            .select((e) => e.fn.max('id').as('id'))
            .where('app_id', 'in', part)
            .groupBy('app_id'),
        )
        .execute();
      for (const l of latest) newest.set(l.app_id, l.commit);
    }
    const json = (s: string | null) => (s === null ? null : (JSON.parse(s) as StrMap));
    return rows.map((r) => ({
      id: r.id,
      uuid: r.uuid,
      name: r.name,
      note: r.note,
      device_type: r.device_type,
      app: r.app_id,
      gateway: r.gateway_id,
      commit: r.commit,
      target_commit: r.pinned_commit ?? newest.get(r.app_id) ?? null,
      pinned: r.pinned_commit !== null,
      status: r.status,
      is_online: r.is_online === null ? null : r.is_online === 1,
      last_seen: r.last_seen,
      download_progress: r.download_progress,
      environment: json(r.environment),
      target_environment: json(r.target_environment)!,
      config: json(r.config),
      target_config: json(r.target_config)!,
      created_at: r.created_at,
    }));
  }
}
