// The one way a service writes what device targets are built from: one transaction, then the
// targets of the devices it affected are refreshed (re-built, their long polls woken, on any node),
// so that no write can forget the refresh.
import type { Transaction } from 'kysely';
import type { ServerDb, ServerTables } from '../db/database.js';
import type { DeviceTargets } from '../targets/deviceTargets.js';

export type Tx = Transaction<ServerTables>;
/** The devices whose targets a write may have changed: `'all'` for a change any target may hold (a registry). */
export type Affected = readonly string[] | 'all';

export class TargetWrites {
  constructor(
    readonly db: ServerDb,
    private readonly targets: DeviceTargets,
  ) {}

  async commit<T>(work: (tx: Tx) => Promise<T>, affected: (result: T) => Affected): Promise<T> {
    const result = await this.db.transaction().execute(work);
    const devices = affected(result);
    if (devices === 'all') await this.targets.refresh();
    else if (devices.length) await this.targets.refresh([...new Set(devices)]);
    return result;
  }
}
