// The releases of a project. Each device runs, per project, the newest release that lists it;
// creating or changing a release records a pending deployment for each device new to it, and every
// write refreshes the affected device targets (targetWrites.ts). A version names one release of its
// project (409 for a second); a release without containers (which stops every service of the
// project on its devices) needs `allow_empty`. What a request gives: releaseInput.ts; the SQL of a
// write: releaseWrites.ts.
import stringify from 'safe-stable-stringify';
import { NotFoundError, ValidationError } from '../../shared/errors.js';
import type { DeploymentState } from '../deployments/stateMachine.js';
import { nowIso, type ServerDb } from '../db/database.js';
import { releaseContainerOf } from '../targets/deviceTargets.js';
import { fullyQualifiedName } from '../targets/releaseSchema.js';
import { validateReleaseApp, type RegistryRecord, type ReleaseContainer } from '../targets/releaseTarget.js';
import { refuseUnknownDevices } from './devices.js';
import {
  type ContainerInput,
  composePaths,
  containerOf,
  containersIn,
  type ReleaseInput,
  type ReleasePatch,
  requiredContainers,
  type StoredInput,
} from './releaseInput.js';
import { freeVersionHash, refuseTakenVersion, setDevices, withFreshHash, writeContainers } from './releaseWrites.js';
import type { TargetWrites } from './targetWrites.js';

export interface Release {
  id: number;
  version: string;
  version_hash: string;
  devices: string[];
  containers: (ReleaseContainer & { fully_qualified_name: string })[];
  remove_containers: string[];
  /** devices that deployed this release successfully */
  successful_deployments: string[];
  created_at: string;
}
export interface Deployment {
  device: string;
  state: DeploymentState;
  error: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

interface ProjectRow {
  id: number;
  name: string;
  default_registry: number | null;
}
type ReleaseRow = { id: number; version: string; version_hash: string; remove_containers: string; created_at: string };

export class Releases {
  private readonly db: ServerDb;

  constructor(private readonly writes: TargetWrites) {
    this.db = writes.db;
  }

  async list(projectId: number): Promise<Release[]> {
    await this.project(projectId);
    return this.entities(await this.db.selectFrom('release').selectAll().where('project_id', '=', projectId).orderBy('id').execute());
  }

  /** The newest release of the project. */
  async active(projectId: number): Promise<Release> {
    await this.project(projectId);
    const row = await this.db.selectFrom('release').selectAll().where('project_id', '=', projectId).orderBy('id', 'desc').limit(1).executeTakeFirst();
    if (!row) throw new NotFoundError(`project ${projectId} has no release`);
    return (await this.entities([row]))[0]!;
  }

  async get(projectId: number, id: number): Promise<Release> {
    const row = await this.db.selectFrom('release').selectAll().where('id', '=', id).where('project_id', '=', projectId).executeTakeFirst();
    if (!row) throw new NotFoundError(`project ${projectId} has no release ${id}`);
    return (await this.entities([row]))[0]!;
  }

  async create(projectId: number, body: ReleaseInput): Promise<Release> {
    const project = await this.project(projectId);
    const containers = requiredContainers(body);
    const input = await this.stored(body.version, body, containers, projectId);
    await composePaths(body, () => this.check(project, input, 0));
    const id = await withFreshHash(() =>
      this.writes.commit(
        async (tx) => {
          await refuseTakenVersion(tx, project.id, input.version, 0);
          const row = await tx
            .insertInto('release')
            .values({
              project_id: project.id,
              version: input.version,
              version_hash: await freeVersionHash(tx),
              remove_containers: JSON.stringify(input.remove_containers),
              created_at: nowIso(),
            })
            .returning('id')
            .executeTakeFirstOrThrow();
          await writeContainers(tx, row.id, input.containers);
          await setDevices(tx, row.id, input.devices, false);
          return row.id;
        },
        () => input.devices,
      ),
    );
    return this.get(project.id, id);
  }

  /** PUT: the release becomes `body` (defaults for what it leaves out). */
  async replace(projectId: number, id: number, body: ReleaseInput): Promise<Release> {
    const containers = requiredContainers(body);
    return this.update(projectId, id, body, () => this.stored(body.version, body, containers, projectId));
  }

  /** PATCH: the fields `body` gives change. */
  async patch(projectId: number, id: number, body: ReleasePatch): Promise<Release> {
    const containers = containersIn(body);
    return this.update(projectId, id, body, async (current) => ({
      version: body.version ?? current.version,
      devices: body.devices ?? current.devices,
      containers: containers?.map(containerOf) ?? current.containers,
      remove_containers: body.remove_containers ?? current.remove_containers,
    }));
  }

  /** Its containers, devices and deployments go with it (foreign keys cascade); its devices fall back to the project's previous release, if any. */
  async remove(projectId: number, id: number): Promise<void> {
    const { devices } = await this.get(projectId, id);
    await this.writes.commit(
      (tx) => tx.deleteFrom('release').where('id', '=', id).execute(),
      () => devices,
    );
  }

  async deployments(projectId: number, id: number): Promise<Deployment[]> {
    await this.get(projectId, id);
    const rows = await this.db
      .selectFrom('deployment')
      .select(['device_id', 'state', 'error', 'created_at', 'updated_at', 'finished_at'])
      .where('release_id', '=', id)
      .orderBy('device_id')
      .execute();
    return rows.map(({ device_id, ...rest }) => ({ device: device_id, ...rest }));
  }

  /** Either change is checked whole before it is stored. */
  private async update(projectId: number, id: number, body: ReleasePatch, change: (current: StoredInput) => Promise<StoredInput>): Promise<Release> {
    const project = await this.project(projectId);
    const current = await this.get(projectId, id);
    const before: StoredInput = {
      version: current.version,
      devices: current.devices,
      containers: current.containers.map(containerOf),
      remove_containers: current.remove_containers,
    };
    const next = await change(before);
    await composePaths(body, () => this.check(project, next, id));
    const contentChanged =
      stringify(before.containers) !== stringify(next.containers) || stringify(before.remove_containers) !== stringify(next.remove_containers);
    await this.writes.commit(
      async (tx) => {
        await refuseTakenVersion(tx, projectId, next.version, id);
        const set = { version: next.version, remove_containers: JSON.stringify(next.remove_containers) };
        await tx.updateTable('release').set(set).where('id', '=', id).execute();
        if (contentChanged) await writeContainers(tx, id, next.containers);
        await setDevices(tx, id, next.devices, contentChanged);
      },
      () => [...before.devices, ...next.devices],
    );
    return this.get(projectId, id);
  }

  private async stored(version: string, body: ReleasePatch, containers: ContainerInput[], projectId: number): Promise<StoredInput> {
    return {
      version,
      devices: body.devices ?? (await this.projectDevices(projectId)),
      containers: containers.map(containerOf),
      remove_containers: body.remove_containers ?? [],
    };
  }

  private async project(id: number): Promise<ProjectRow> {
    const row = await this.db.selectFrom('project').select(['id', 'name', 'default_registry_id']).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError(`no project ${id}`);
    return { id: row.id, name: row.name, default_registry: row.default_registry_id };
  }

  private async projectDevices(projectId: number): Promise<string[]> {
    const rows = await this.db.selectFrom('project_device').select('device_id').where('project_id', '=', projectId).orderBy('device_id').execute();
    return rows.map((r) => r.device_id);
  }

  private async entities(rows: ReleaseRow[]): Promise<Release[]> {
    if (!rows.length) return [];
    const ids = rows.map((r) => r.id);
    const [containers, devices, succeeded] = await Promise.all([
      this.db.selectFrom('release_container').selectAll().where('release_id', 'in', ids).orderBy('release_id').orderBy('position').execute(),
      this.db.selectFrom('release_device').select(['release_id', 'device_id']).where('release_id', 'in', ids).orderBy('device_id').execute(),
      this.db
        .selectFrom('deployment')
        .select(['release_id', 'device_id'])
        .where('release_id', 'in', ids)
        .where('state', '=', 'succeeded')
        .orderBy('device_id')
        .execute(),
    ]);
    const by = <T extends { release_id: number }>(list: T[], id: number) => list.filter((x) => x.release_id === id);
    return rows.map((r) => ({
      id: r.id,
      version: r.version,
      version_hash: r.version_hash,
      devices: by(devices, r.id).map((d) => d.device_id),
      containers: by(containers, r.id).map((c) => ({ ...releaseContainerOf(c), fully_qualified_name: fullyQualifiedName(c.name, r.id) })),
      remove_containers: JSON.parse(r.remove_containers) as string[],
      successful_deployments: by(succeeded, r.id).map((d) => d.device_id),
      created_at: r.created_at,
    }));
  }

  /**
   * References to registries and devices that do not exist are 400s naming the field; then the
   * containers must convert to a valid app (the same conversion devices get), or nothing is stored.
   */
  private async check(project: ProjectRow, input: StoredInput, releaseId: number): Promise<void> {
    const wanted = [...new Set([...input.containers.map((c) => c.registry), project.default_registry].filter((r): r is number => r !== null))];
    const registries = new Map<number, RegistryRecord>();
    if (wanted.length) {
      for (const r of await this.db.selectFrom('registry').select(['id', 'url', 'username']).where('id', 'in', wanted).execute()) {
        registries.set(r.id, { ...r, password: '' }); // credentials play no part in the check
      }
    }
    input.containers.forEach((c, i) => {
      if (c.registry !== null && !registries.has(c.registry)) throw new ValidationError(`/containers/${i}/registry`, `no registry ${c.registry}`, 'release');
    });
    await refuseUnknownDevices(this.db, input.devices, 'release');
    validateReleaseApp({ id: releaseId, version_hash: '00000000', project }, input.containers, registries);
  }
}
