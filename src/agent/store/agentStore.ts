// Typed access to what the agent persists. Every write is one transaction.
import type { TargetState } from '../../shared/targetState.js';
import { purgeKey, type InitialContainers } from '../reconciler/types.js';
import type { AgentDb } from './database.js';
import { isoTime } from '../../shared/isoTime.js';

/** The event log is a ring: it never holds more than this many rows. */
export const MAX_EVENTS = 2000;

type AppliedRelease = { releaseId: number; commit: string };

/**
 * What the reconciler reads every round (applied releases, tracked images, containers the agent
 * stopped) is mirrored in memory and written through, so a no-op round never touches the database.
 */
export class AgentStore {
  private constructor(
    readonly db: AgentDb,
    private readonly applied: Map<number, AppliedRelease>,
    private readonly tracked: Set<string>,
    private readonly stopped: Set<string>,
    private readonly initial: Map<number, InitialContainers>,
    /** `appId/service` → its purgeKey; `purgedKeys` mirrors the values for the planner */
    private readonly purged: Map<string, string>,
    private readonly purgedKeys = new Set(purged.values()),
  ) {}

  static async open(db: AgentDb): Promise<AgentStore> {
    const [applied, tracked, stopped, initial, purged] = await Promise.all([
      db.selectFrom('applied_release').selectAll().execute(),
      db.selectFrom('tracked_image').select('ref').execute(),
      db.selectFrom('stopped_container').select('container_id').execute(),
      db.selectFrom('initial_containers').selectAll().execute(),
      db.selectFrom('purged_data').selectAll().execute(),
    ]);
    return new AgentStore(
      db,
      new Map(applied.map((r) => [r.app_id, { releaseId: r.release_id, commit: r.commit }])),
      new Set(tracked.map((r) => r.ref)),
      new Set(stopped.map((r) => r.container_id)),
      new Map(
        initial.map((r) => [r.app_id, { releaseId: r.release_id, phase: r.phase as InitialContainers['phase'], names: JSON.parse(r.names) as string[] }]),
      ),
      new Map(purged.map((r) => [`${r.app_id}/${r.service_name}`, purgeKey(r.app_id, r.service_name, r.release_id)])),
    );
  }

  async getTarget(): Promise<{ target: TargetState; source: string } | undefined> {
    const row = await this.db.selectFrom('target_state').selectAll().where('id', '=', 1).executeTakeFirst();
    return row ? { target: JSON.parse(row.json) as TargetState, source: row.source } : undefined;
  }

  async setTarget(target: TargetState, source: string): Promise<void> {
    const values = { id: 1, source, json: JSON.stringify(target), updated_at: isoTime() };
    await this.db
      .insertInto('target_state')
      .values(values)
      .onConflict((oc) => oc.column('id').doUpdateSet({ source, json: values.json, updated_at: values.updated_at }))
      .execute();
  }

  appliedReleases(): ReadonlyMap<number, AppliedRelease> {
    return this.applied;
  }

  /** Also ends the deployment's bookkeeping: its initial containers (and, for a removed app, purges). */
  async markApplied(appId: number, release: AppliedRelease | null): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom('initial_containers').where('app_id', '=', appId).execute();
      if (!release) {
        await tx.deleteFrom('applied_release').where('app_id', '=', appId).execute();
        await tx.deleteFrom('purged_data').where('app_id', '=', appId).execute();
        return;
      }
      const row = { app_id: appId, release_id: release.releaseId, commit: release.commit, applied_at: isoTime() };
      await tx
        .insertInto('applied_release')
        .values(row)
        .onConflict((oc) => oc.column('app_id').doUpdateSet({ release_id: row.release_id, commit: row.commit, applied_at: row.applied_at }))
        .execute();
    });
    this.initial.delete(appId);
    if (release) {
      this.applied.set(appId, release);
      return;
    }
    this.applied.delete(appId);
    for (const [key, done] of this.purged) {
      if (!key.startsWith(`${appId}/`)) continue;
      this.purged.delete(key);
      this.purgedKeys.delete(done);
    }
  }

  initialContainers(): ReadonlyMap<number, InitialContainers> {
    return this.initial;
  }

  async setInitialContainers(appId: number, record: InitialContainers): Promise<void> {
    const row = { release_id: record.releaseId, phase: record.phase, names: JSON.stringify(record.names) };
    await this.db
      .insertInto('initial_containers')
      .values({ app_id: appId, ...row })
      .onConflict((oc) => oc.column('app_id').doUpdateSet(row))
      .execute();
    this.initial.set(appId, record);
  }

  async forgetInitialContainers(appId: number): Promise<void> {
    await this.db.deleteFrom('initial_containers').where('app_id', '=', appId).execute();
    this.initial.delete(appId);
  }

  /** purgeKeys of the purges done (the latest release per service). */
  purgedData(): ReadonlySet<string> {
    return this.purgedKeys;
  }

  async markPurged(appId: number, serviceName: string, releaseId: number): Promise<void> {
    const row = { app_id: appId, service_name: serviceName, release_id: releaseId };
    await this.db
      .insertInto('purged_data')
      .values(row)
      .onConflict((oc) => oc.columns(['app_id', 'service_name']).doUpdateSet({ release_id: releaseId }))
      .execute();
    const key = `${appId}/${serviceName}`;
    const previous = this.purged.get(key);
    if (previous) this.purgedKeys.delete(previous);
    this.purged.set(key, purgeKey(appId, serviceName, releaseId));
    this.purgedKeys.add(purgeKey(appId, serviceName, releaseId));
  }

  trackedImages(): ReadonlySet<string> {
    return this.tracked;
  }

  /** Recorded before the pull starts, so an image pulled just before a crash is still cleaned up later. */
  async trackImage(ref: string, appId: number, serviceName: string): Promise<void> {
    if (this.tracked.has(ref)) return;
    await this.db
      .insertInto('tracked_image')
      .values({ ref, app_id: appId, service_name: serviceName, pulled_at: isoTime() })
      .onConflict((oc) => oc.column('ref').doNothing())
      .execute();
    this.tracked.add(ref);
  }

  async untrackImage(ref: string): Promise<void> {
    await this.db.deleteFrom('tracked_image').where('ref', '=', ref).execute();
    this.tracked.delete(ref);
  }

  stoppedContainers(): ReadonlySet<string> {
    return this.stopped;
  }

  async setStoppedByAgent(containerId: string, stopped: boolean): Promise<void> {
    if (stopped === this.stopped.has(containerId)) return;
    if (stopped) {
      await this.db
        .insertInto('stopped_container')
        .values({ container_id: containerId, stopped_at: isoTime() })
        .onConflict((oc) => oc.column('container_id').doNothing())
        .execute();
      this.stopped.add(containerId);
    } else {
      await this.db.deleteFrom('stopped_container').where('container_id', '=', containerId).execute();
      this.stopped.delete(containerId);
    }
  }

  /** Key/value settings of the agent (API keys, …), all of them: there are few. */
  async configValues(): Promise<Map<string, string>> {
    const rows = await this.db.selectFrom('config').selectAll().execute();
    return new Map(rows.map((r) => [r.key, r.value]));
  }

  /** Sets and deletes settings in one transaction. */
  async updateConfig(set: Record<string, string>, remove: string[] = []): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      for (const [key, value] of Object.entries(set)) {
        await tx
          .insertInto('config')
          .values({ key, value })
          .onConflict((oc) => oc.column('key').doUpdateSet({ value }))
          .execute();
      }
      if (remove.length) await tx.deleteFrom('config').where('key', 'in', remove).execute();
    });
  }

  /** The system messages the event table holds, oldest first. */
  events(): Promise<{ ts: string; level: string; message: string }[]> {
    return this.db.selectFrom('event').select(['ts', 'level', 'message']).orderBy('id').execute();
  }

  async addEvent(level: string, message: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      const { id } = await tx.insertInto('event').values({ ts: isoTime(), level, message }).returning('id').executeTakeFirstOrThrow();
      await tx
        .deleteFrom('event')
        .where('id', '<=', id - MAX_EVENTS)
        .execute();
    });
  }
}
