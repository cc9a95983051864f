// Writes what a device's report says of its deployments (stateMachine.ts), in the report's transaction.
import type { Transaction } from 'kysely';
import type { TargetState } from '../../shared/targetState.js';
import { nowIso, type ServerDb, type ServerTables } from '../db/database.js';
import { blockedFrom, deploymentUpdate, IN_PROGRESS, nextDeployment, supersedingRelease, type AppDeploymentReport } from './stateMachine.js';

type Tx = Transaction<ServerTables>;

/** The devices' deployments of the project's releases older than `newest` that are still under way are superseded. */
export async function supersedeOlder(db: ServerDb | Tx, devices: readonly string[], projectId: number, newest: number, now: string): Promise<void> {
  await db
    .updateTable('deployment')
    .set({ state: 'superseded', updated_at: now, finished_at: now })
    .where('device_id', 'in', devices)
    .where('state', 'in', IN_PROGRESS)
    .where('release_id', '<', newest)
    .where('release_id', 'in', (eb) => eb.selectFrom('release').select('id').where('project_id', '=', projectId))
    .execute();
}

/**
 * The deployment of the release the app's report is about moves on; the device's deployments of
 * the app's older releases still under way are superseded. Only releases of the app's own project
 * (app id = project id) are touched. `target`: the device's target as the server has it.
 */
export async function recordDeployment(tx: Tx, deviceId: string, appId: number, app: AppDeploymentReport, target: TargetState | undefined): Promise<void> {
  const serverTarget = target?.apps[String(appId)]?.release.id;
  const now = nowIso();
  const newest = supersedingRelease(app, serverTarget);
  if (newest) await supersedeOlder(tx, [deviceId], appId, newest, now);
  const update = deploymentUpdate(app, serverTarget);
  if (!update) return;
  const release = await tx.selectFrom('release').select('project_id').where('id', '=', update.releaseId).executeTakeFirst();
  if (!release || release.project_id !== appId) return;
  const existing = await tx
    .selectFrom('deployment')
    .select(['state', 'error'])
    .where('release_id', '=', update.releaseId)
    .where('device_id', '=', deviceId)
    .executeTakeFirst();
  const next = nextDeployment(existing, update);
  if (!next) return;
  const values = { state: next.state, error: next.error, updated_at: now, finished_at: next.finished ? now : null };
  if (!existing) {
    const { numInsertedOrUpdatedRows } = await tx
      .insertInto('deployment')
      .values({ release_id: update.releaseId, device_id: deviceId, created_at: now, ...values })
      .onConflict((oc) => oc.columns(['release_id', 'device_id']).doNothing())
      .executeTakeFirst();
    if (numInsertedOrUpdatedRows) return;
  }
  // (guarded: a row another transaction moved meanwhile moves only where the state machine allows)
  await tx
    .updateTable('deployment')
    .set(values)
    .where('release_id', '=', update.releaseId)
    .where('device_id', '=', deviceId)
    .where('state', 'not in', blockedFrom(next.state))
    .execute();
}
