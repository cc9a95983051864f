// What a device's state report may speak of: the apps of its own target, and releases that are its
// own. Without this a device's key could mark any project's release succeeded or failed (the report
// names the app and the release), and grow its stored state with apps it makes up.
import type { TargetState } from '../../shared/targetState.js';
import type { ServerDb } from '../db/database.js';

/** The release ids an app's report may carry. */
export interface ReleaseRefs {
  releaseId?: number | null;
  targetReleaseId?: number | null;
}

/**
 * The report's apps cut down to what the device may say:
 * - an app that is not in its target is dropped (`null`, which removes an app from its stored state,
 *   always passes);
 * - a release id must be a release of that app's project that is the device's own: listed for it,
 *   deployed on it, or the one its target gives it. Otherwise the running release (`releaseId`) is
 *   unknown to the server (null), and an app said to be moving to a release not its own
 *   (`targetReleaseId`) is dropped whole, so that no deployment moves on its word.
 */
export async function scopeReport<A extends ReleaseRefs>(
  db: ServerDb,
  deviceId: string,
  apps: Record<string, A | null>,
  target: TargetState | undefined,
): Promise<Record<string, A | null>> {
  const inTarget = Object.entries(apps).filter(([appId, app]) => app === null || (target && Object.hasOwn(target.apps, appId)));
  const own = await ownReleases(db, deviceId, inTarget, target);
  const out: Record<string, A | null> = {};
  for (const [appId, app] of inTarget) {
    if (app === null) {
      out[appId] = null;
      continue;
    }
    const isOwn = (id: number | null | undefined) => id == null || own.has(`${appId}:${id}`);
    if (!isOwn(app.targetReleaseId)) continue;
    out[appId] = isOwn(app.releaseId) ? app : { ...app, releaseId: null };
  }
  return out;
}

/** `<project>:<release>` of the releases named that are the device's own. */
async function ownReleases(db: ServerDb, deviceId: string, apps: [string, ReleaseRefs | null][], target: TargetState | undefined): Promise<Set<string>> {
  const named = [...new Set(apps.flatMap(([, a]) => [a?.releaseId, a?.targetReleaseId]).filter((id): id is number => typeof id === 'number'))];
  if (!named.length) return new Set();
  const given = Object.values(target?.apps ?? {}).map((a) => a.release.id);
  const rows = await db
    .selectFrom('release')
    .select(['id', 'project_id'])
    .where('id', 'in', named)
    .where((eb) =>
      eb.or([
        eb('id', 'in', eb.selectFrom('release_device').select('release_id').where('device_id', '=', deviceId)),
        eb('id', 'in', eb.selectFrom('deployment').select('release_id').where('device_id', '=', deviceId)),
        ...(given.length ? [eb('id', 'in', given)] : []),
      ]),
    )
    .execute();
  return new Set(rows.map((r) => `${r.project_id}:${r.id}`));
}
