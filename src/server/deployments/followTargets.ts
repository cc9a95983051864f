// Deployments follow the targets as they are built, not only the devices' reports: a device whose
// target moved to a newer release of a project will never run the older ones still under way, so
// those are superseded at once (an offline device no longer leaves them pending for ever); a
// release that is the device's target again (the newer one was deleted, or no longer lists it) is
// pending again. A device that reports on a superseded release moves it on as before.
import { inChunks, nowIso, type ServerDb } from '../db/database.js';
import { supersedeOlder } from './recordDeployment.js';

/** Devices per statement. */
const CHUNK = 500;

/** Per device, the release it runs of each project (project id → release id), as its target has it. */
export type TargetReleases = ReadonlyMap<string, ReadonlyMap<number, number>>;

export async function followTargets(db: ServerDb, targets: TargetReleases): Promise<void> {
  const now = nowIso();
  for (const { projectId, releaseId, devices } of devicesByRelease(targets)) {
    for (const part of inChunks(devices, CHUNK)) {
      await supersedeOlder(db, part, projectId, releaseId, now);
      await db
        .updateTable('deployment')
        .set({ state: 'pending', error: null, updated_at: now, finished_at: null })
        .where('device_id', 'in', part)
        .where('release_id', '=', releaseId)
        .where('state', '=', 'superseded')
        .execute();
      // SQLite's calls block: the polls a refresh woke are answered between chunks
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

/** The devices running each release: a fleet on one release is a few statements, not one per device. */
function devicesByRelease(targets: TargetReleases): Iterable<{ projectId: number; releaseId: number; devices: string[] }> {
  const out = new Map<number, { projectId: number; releaseId: number; devices: string[] }>();
  for (const [deviceId, releases] of targets)
    for (const [projectId, releaseId] of releases) {
      const group = out.get(releaseId) ?? { projectId, releaseId, devices: [] };
      group.devices.push(deviceId);
      out.set(releaseId, group);
    }
  return out.values();
}
