// The SQL steps of a release's writes, run inside `TargetWrites.commit` (releases.ts): the version
// check, the container rows, the device list with its deployments, and a free version hash.
import { randomBytes } from 'node:crypto';
import { PostgresAdapter } from 'kysely';
import { ConflictError } from '../../shared/errors.js';
import { inChunks, nowIso } from '../db/database.js';
import type { ReleaseContainer } from '../targets/releaseTarget.js';
import type { Tx } from './targetWrites.js';

/** Where version hashes come from (tests replace it to force a collision). */
export const versionHashes = { next: (): string => randomBytes(4).toString('hex') };

/**
 * Versions are unique in a project (a release is changed with PUT or PATCH, never shadowed by a
 * namesake). On PostgreSQL the project's row is locked, so that two server nodes cannot both
 * create a version; SQLite runs one transaction at a time.
 */
export async function refuseTakenVersion(tx: Tx, projectId: number, version: string, releaseId: number): Promise<void> {
  if (tx.getExecutor().adapter instanceof PostgresAdapter) await tx.selectFrom('project').select('id').where('id', '=', projectId).forUpdate().execute();
  const taken = await tx
    .selectFrom('release')
    .select('id')
    .where('project_id', '=', projectId)
    .where('version', '=', version)
    .where('id', '!=', releaseId)
    .executeTakeFirst();
  if (taken) {
    throw new ConflictError(
      `version: release ${taken.id} of project ${projectId} is version "${version}" already (versions are unique in a project): ` +
        `use another version, or change release ${taken.id} with PUT or PATCH`,
    );
  }
}

export async function writeContainers(tx: Tx, releaseId: number, containers: ReleaseContainer[]): Promise<void> {
  await tx.deleteFrom('release_container').where('release_id', '=', releaseId).execute();
  if (!containers.length) return;
  await tx
    .insertInto('release_container')
    .values(
      containers.map((c, position) => ({
        release_id: releaseId,
        position,
        name: c.name,
        image: c.image,
        tag: c.tag,
        required_tags: JSON.stringify(c.required_tags),
        startup_parameters: JSON.stringify(c.startup_parameters),
        purge_data: c.purge_data ? 1 : 0,
        registry_id: c.registry,
      })),
    )
    .execute();
}

/**
 * The release's devices become `devices`: a device new to it gets a pending deployment, a device
 * taken off it loses its deployment record; when the release's content changed, the devices that
 * stay must deploy it again (pending).
 */
export async function setDevices(tx: Tx, releaseId: number, devices: string[], contentChanged: boolean): Promise<void> {
  const before = new Set((await tx.selectFrom('release_device').select('device_id').where('release_id', '=', releaseId).execute()).map((d) => d.device_id));
  const wanted = new Set(devices);
  const added = devices.filter((d) => !before.has(d));
  const removed = [...before].filter((d) => !wanted.has(d));
  const kept = devices.filter((d) => before.has(d));
  const now = nowIso();
  for (const part of inChunks(removed)) {
    await tx.deleteFrom('release_device').where('release_id', '=', releaseId).where('device_id', 'in', part).execute();
    await tx.deleteFrom('deployment').where('release_id', '=', releaseId).where('device_id', 'in', part).execute();
  }
  const pending = { state: 'pending' as const, error: null, updated_at: now, finished_at: null };
  for (const part of inChunks(added)) {
    await tx
      .insertInto('release_device')
      .values(part.map((device_id) => ({ release_id: releaseId, device_id })))
      .execute();
    await tx
      .insertInto('deployment')
      .values(part.map((device_id) => ({ release_id: releaseId, device_id, ...pending, created_at: now })))
      .onConflict((oc) => oc.columns(['release_id', 'device_id']).doUpdateSet(pending))
      .execute();
  }
  for (const part of contentChanged ? inChunks(kept) : []) {
    const stale = tx.updateTable('deployment').set(pending).where('release_id', '=', releaseId).where('device_id', 'in', part);
    await stale.where('state', '!=', 'pending').execute();
  }
}

/** A version hash no release has; the unique constraint settles a race with another server node. */
export async function freeVersionHash(tx: Tx): Promise<string> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const hash = versionHashes.next();
    const taken = await tx.selectFrom('release').select('id').where('version_hash', '=', hash).executeTakeFirst();
    if (!taken) return hash;
  }
  throw new Error('no free version hash after 20 attempts');
}

export async function withFreshHash<T>(insert: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await insert();
    } catch (err) {
      const msg = String((err as Error).message);
      if (attempt >= 3 || !/version_hash/.test(msg) || !/unique|duplicate/i.test(msg)) throw err;
    }
  }
}
