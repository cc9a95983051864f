// A device's state reports, merged into `device.state_json`; each report also moves the deployments
// of its releases along (deployments/recordDeployment.ts).
import { PostgresAdapter, type Transaction } from 'kysely';
import { UnauthorizedError } from '../../shared/errors.js';
import type { AppReportPatch, ServiceReportPatch, StateReport, UnikReport } from '../../shared/deviceLink.js';
import type { TargetState } from '../../shared/targetState.js';
import { nowIso, type ServerDb, type ServerTables } from '../db/database.js';
import { recordDeployment } from '../deployments/recordDeployment.js';
import { StatusError } from '../httpErrors.js';
import { scopeReport } from '../targets/reportScope.js';

/** Bound of the state kept from the reports. */
const MAX_STATE_CHARS = 1024 * 1024;

/** What `device.state_json` holds: the merged reports. */
export interface StoredState {
  reported_at: string;
  apps: Record<string, StoredApp>;
  /** the device's UniK images and instances, as last reported (sent only when they change) */
  unik?: UnikReport;
}
export type StoredApp = Omit<AppReportPatch, 'services'> & { services?: Record<string, ServiceReportPatch> };

type Tx = Transaction<ServerTables>;

/**
 * Merges the report into the device's state: only the apps of its target count, with its own releases
 * (reportScope.ts); fields merge into an app's last report, `services` when sent is the whole set.
 */
export async function applyReport(db: ServerDb, deviceId: string, report: StateReport): Promise<void> {
  const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  await db.transaction().execute(async (tx) => {
    // one report at a time per device (on PostgreSQL the row lock orders reports from two nodes)
    const query = tx.selectFrom('device').select('state_json').where('id', '=', deviceId);
    const row = await (postgres ? query.forUpdate() : query).executeTakeFirst();
    if (!row) throw new UnauthorizedError('unknown device key');
    const stored = row.state_json ? (JSON.parse(row.state_json) as StoredState) : undefined;
    const target = await serverTarget(tx, deviceId);
    // what it no longer runs leaves its state
    const state: StoredState = { reported_at: nowIso(), apps: Object.fromEntries(Object.entries(stored?.apps ?? {}).filter(([appId]) => target?.apps[appId])) };
    const unik = report.unik ?? stored?.unik;
    if (unik) state.unik = unik;
    const touched: string[] = [];
    for (const [appId, app] of Object.entries(await scopeReport(tx, deviceId, report.apps ?? {}, target))) {
      if (app === null) {
        delete state.apps[appId];
        continue;
      }
      const { services, ...fields } = app;
      const merged: StoredApp = { ...state.apps[appId], ...fields };
      if (services) merged.services = Object.fromEntries(Object.entries(services).filter((e): e is [string, ServiceReportPatch] => e[1] !== null));
      state.apps[appId] = merged;
      touched.push(appId);
    }
    const json = JSON.stringify(state);
    if (json.length > MAX_STATE_CHARS)
      throw new StatusError(413, `the device's state would take more than ${MAX_STATE_CHARS} characters: report fewer services or shorter errors`);
    await tx
      .updateTable('device')
      .set({ state_json: json, ...(report.agent_version !== undefined ? { agent_version: report.agent_version } : {}) })
      .where('id', '=', deviceId)
      .execute();
    for (const appId of touched) await recordDeployment(tx, deviceId, Number(appId), state.apps[appId]!, target);
  });
}

async function serverTarget(tx: Tx, deviceId: string): Promise<TargetState | undefined> {
  const row = await tx.selectFrom('device_target').select('target_json').where('device_id', '=', deviceId).executeTakeFirst();
  return row ? (JSON.parse(row.target_json) as TargetState) : undefined;
}
