// Typed access to what the agent persists. Every write is one transaction.
import type { TargetState } from '../../shared/targetState.js';
import type { AgentDb } from './database.js';

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
  ) {}

  static async open(db: AgentDb): Promise<AgentStore> {
    const [applied, tracked, stopped] = await Promise.all([
      db.selectFrom('applied_release').selectAll().execute(),
      db.selectFrom('tracked_image').select('ref').execute(),
      db.selectFrom('stopped_container').select('container_id').execute(),
    ]);
    return new AgentStore(
      db,
      new Map(applied.map((r) => [r.app_id, { releaseId: r.release_id, commit: r.commit }])),
      new Set(tracked.map((r) => r.ref)),
      new Set(stopped.map((r) => r.container_id)),
    );
  }

  async getTarget(): Promise<{ target: TargetState; source: string } | undefined> {
    const row = await this.db.selectFrom('target_state').selectAll().where('id', '=', 1).executeTakeFirst();
    return row ? { target: JSON.parse(row.json) as TargetState, source: row.source } : undefined;
  }

  async setTarget(target: TargetState, source: string): Promise<void> {
    const values = { id: 1, source, json: JSON.stringify(target), updated_at: new Date().toISOString() };
    await this.db
      .insertInto('target_state')
      .values(values)
      .onConflict((oc) => oc.column('id').doUpdateSet({ source, json: values.json, updated_at: values.updated_at }))
      .execute();
  }

  appliedReleases(): ReadonlyMap<number, AppliedRelease> {
    return this.applied;
  }

  async markApplied(appId: number, release: AppliedRelease | null): Promise<void> {
    if (!release) {
      await this.db.deleteFrom('applied_release').where('app_id', '=', appId).execute();
      this.applied.delete(appId);
      return;
    }
    const row = { app_id: appId, release_id: release.releaseId, commit: release.commit, applied_at: new Date().toISOString() };
    await this.db
      .insertInto('applied_release')
      .values(row)
      .onConflict((oc) => oc.column('app_id').doUpdateSet({ release_id: row.release_id, commit: row.commit, applied_at: row.applied_at }))
      .execute();
    this.applied.set(appId, release);
  }

  trackedImages(): ReadonlySet<string> {
    return this.tracked;
  }

  /** Recorded before the pull starts, so an image pulled just before a crash is still cleaned up later. */
  async trackImage(ref: string, appId: number, serviceName: string): Promise<void> {
    if (this.tracked.has(ref)) return;
    await this.db
      .insertInto('tracked_image')
      .values({ ref, app_id: appId, service_name: serviceName, pulled_at: new Date().toISOString() })
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
        .values({ container_id: containerId, stopped_at: new Date().toISOString() })
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
        await tx.insertInto('config').values({ key, value }).onConflict((oc) => oc.column('key').doUpdateSet({ value })).execute();
      }
      if (remove.length) await tx.deleteFrom('config').where('key', 'in', remove).execute();
    });
  }

  async addEvent(level: string, message: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      const { id } = await tx
        .insertInto('event')
        .values({ ts: new Date().toISOString(), level, message })
        .returning('id')
        .executeTakeFirstOrThrow();
      await tx.deleteFrom('event').where('id', '<=', id - MAX_EVENTS).execute();
    });
  }
}
