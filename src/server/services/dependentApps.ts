// Dependent apps (balena's model): an app of a gateway project whose devices cannot run the agent
// (microcontrollers); its releases are images that are never run: the gateway extracts their
// /assets. A release's commit is its image digest when the registry gives it, else a version hash;
// the newest release is the app's target commit (a device may be pinned to an older one:
// dependentDevices.ts). Every write refreshes the targets of the project's devices (the gateways).
// An app that still has devices is not deleted (409): delete them first, so that no device in the
// field is dropped by accident.
import { ConflictError, NotFoundError, ValidationError } from '../../shared/errors.js';
import type { Selectable } from 'kysely';
import { nowIso, type ServerDb, type ServerTables } from '../db/database.js';
import { dependentImage } from '../targets/dependentTarget.js';
import type { RegistryRecord } from '../targets/releaseTarget.js';
import type { ImageDigests } from './imageDigests.js';
import { versionHashes } from './releaseWrites.js';
import type { TargetWrites, Tx } from './targetWrites.js';

export interface DependentApp {
  id: number;
  project: number;
  name: string;
  device_type: string;
  config: Record<string, string>;
  /** the newest release's commit: what its devices run unless pinned */
  commit: string | null;
  created_at: string;
}
export interface DependentAppInput {
  name: string;
  device_type: string;
  config?: Record<string, string>;
}
export interface DependentRelease {
  id: number;
  app: number;
  image: string;
  tag: string;
  registry: number | null;
  commit: string;
  /** whether `commit` is the image digest (else it is the version hash) */
  digest: boolean;
  version_hash: string;
  created_at: string;
}
export interface DependentReleaseInput {
  image: string;
  tag?: string;
  registry?: number | null;
}

type AppRow = { id: number; project_id: number; name: string; device_type: string; config: string; created_at: string };

export class DependentApps {
  private readonly db: ServerDb;

  constructor(
    private readonly writes: TargetWrites,
    private readonly digests: ImageDigests,
  ) {
    this.db = writes.db;
  }

  async list(projectId: number): Promise<DependentApp[]> {
    await this.project(projectId);
    const rows = await this.db.selectFrom('dependent_app').selectAll().where('project_id', '=', projectId).orderBy('id').execute();
    return Promise.all(rows.map((r) => this.entity(r)));
  }

  async get(id: number): Promise<DependentApp> {
    return this.entity(await this.row(id));
  }

  async create(projectId: number, body: DependentAppInput): Promise<DependentApp> {
    await this.project(projectId);
    const id = await this.writes.commit(
      async (tx) => {
        await refuseTakenName(tx, projectId, body.name, 0);
        const values = {
          project_id: projectId,
          name: body.name,
          device_type: body.device_type,
          config: JSON.stringify(body.config ?? {}),
          created_at: nowIso(),
        };
        const row = await tx.insertInto('dependent_app').values(values).returning('id').executeTakeFirstOrThrow();
        return { id: row.id, gateways: await gatewaysOf(tx, projectId) };
      },
      (r) => r.gateways,
    );
    return this.get(id.id);
  }

  async patch(id: number, body: Partial<DependentAppInput>): Promise<DependentApp> {
    const row = await this.row(id);
    await this.writes.commit(
      async (tx) => {
        if (body.name !== undefined) await refuseTakenName(tx, row.project_id, body.name, id);
        const set = {
          ...(body.name !== undefined ? { name: body.name } : {}),
          ...(body.device_type !== undefined ? { device_type: body.device_type } : {}),
          ...(body.config !== undefined ? { config: JSON.stringify(body.config) } : {}),
        };
        if (Object.keys(set).length) await tx.updateTable('dependent_app').set(set).where('id', '=', id).execute();
        return gatewaysOf(tx, row.project_id);
      },
      (gateways) => gateways,
    );
    return this.get(id);
  }

  /** Refused (409) while it has devices; its releases go with it. */
  async remove(id: number): Promise<void> {
    const row = await this.row(id);
    await this.writes.commit(
      async (tx) => {
        const devices = await tx
          .selectFrom('dependent_device')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('app_id', '=', id)
          .executeTakeFirstOrThrow();
        if (Number(devices.n)) throw new ConflictError(`dependent app ${id} has ${devices.n} device(s): delete them first (DELETE /dependent-devices/{uuid})`);
        await tx.deleteFrom('dependent_app').where('id', '=', id).execute();
        return gatewaysOf(tx, row.project_id);
      },
      (gateways) => gateways,
    );
  }

  async releases(appId: number): Promise<DependentRelease[]> {
    await this.row(appId);
    const rows = await this.db.selectFrom('dependent_release').selectAll().where('app_id', '=', appId).orderBy('id').execute();
    return rows.map(releaseOf);
  }

  /**
   * A new release: its image is checked as a container's of a normal release (400 naming `/image`,
   * `/tag` or `/registry`); its commit is the image digest when the registry gives it, else a new
   * version hash. A digest another release of the app has is a 409 (the same image).
   */
  async createRelease(appId: number, body: DependentReleaseInput): Promise<DependentRelease> {
    const app = await this.row(appId);
    const project = await this.project(app.project_id);
    const input = { image: body.image, tag: body.tag ?? 'latest', registry: body.registry ?? null };
    const registry = await this.checkImage(project, input);
    const digest = input.tag.startsWith('sha256:') ? input.tag : await this.digests.resolve(registry?.image ?? input.image, input.tag, registry?.credentials);
    const id = await this.writes.commit(
      async (tx) => {
        const version_hash = versionHashes.next();
        const commit = digest ?? version_hash;
        const taken = await tx.selectFrom('dependent_release').select('id').where('app_id', '=', appId).where('commit', '=', commit).executeTakeFirst();
        if (taken) throw new ConflictError(`commit: release ${taken.id} of dependent app ${appId} is this image already (commit ${commit})`);
        const values = { app_id: appId, image: input.image, tag: input.tag, registry_id: input.registry, commit, version_hash, created_at: nowIso() };
        const row = await tx.insertInto('dependent_release').values(values).returning('id').executeTakeFirstOrThrow();
        return { id: row.id, gateways: await gatewaysOf(tx, app.project_id) };
      },
      (r) => r.gateways,
    );
    const row = await this.db.selectFrom('dependent_release').selectAll().where('id', '=', id.id).executeTakeFirstOrThrow();
    return releaseOf(row);
  }

  /** The image as devices would get it; 400s name the request's field. Its registry's address and credentials, for the digest. */
  private async checkImage(
    project: { id: number; name: string; default_registry: number | null },
    input: { image: string; tag: string; registry: number | null },
  ): Promise<{ image: string; credentials: { url: string; username: string; password: string } } | undefined> {
    const wanted = input.registry ?? project.default_registry;
    const registries = new Map<number, RegistryRecord>();
    if (wanted !== null) {
      const r = await this.db.selectFrom('registry').select(['id', 'url', 'username']).where('id', '=', wanted).executeTakeFirst();
      if (!r) throw new ValidationError('/registry', `no registry ${wanted}`, 'dependent release');
      registries.set(r.id, { ...r, password: '' });
    }
    let converted: ReturnType<typeof dependentImage>;
    try {
      converted = dependentImage(project, { id: 1, ...input }, registries);
    } catch (err) {
      if (err instanceof ValidationError) throw new ValidationError(err.field.replace(/^\/containers\/0/, '') || '/image', err.reason, 'dependent release');
      throw err;
    }
    if (!converted.registry) return undefined;
    const full = await this.db.selectFrom('registry').select(['url', 'username', 'password_sealed']).where('id', '=', wanted!).executeTakeFirstOrThrow();
    // the reference without its tag: `<registry host>/<repository>`
    const repository = converted.image.slice(0, converted.image.length - input.tag.length - 1);
    return { image: repository, credentials: { url: full.url, username: full.username, password: full.password_sealed } };
  }

  private async row(id: number): Promise<AppRow> {
    const row = await this.db.selectFrom('dependent_app').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError(`no dependent app ${id}`);
    return row;
  }

  private async project(id: number): Promise<{ id: number; name: string; default_registry: number | null }> {
    const row = await this.db.selectFrom('project').select(['id', 'name', 'default_registry_id']).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError(`no project ${id}`);
    return { id: row.id, name: row.name, default_registry: row.default_registry_id };
  }

  private async entity(r: AppRow): Promise<DependentApp> {
    const newest = await this.db.selectFrom('dependent_release').select('commit').where('app_id', '=', r.id).orderBy('id', 'desc').limit(1).executeTakeFirst();
    return {
      id: r.id,
      project: r.project_id,
      name: r.name,
      device_type: r.device_type,
      config: JSON.parse(r.config) as Record<string, string>,
      commit: newest?.commit ?? null,
      created_at: r.created_at,
    };
  }
}

const releaseOf = (r: Selectable<ServerTables['dependent_release']>): DependentRelease => ({
  id: r.id,
  app: r.app_id,
  image: r.image,
  tag: r.tag,
  registry: r.registry_id,
  commit: r.commit,
  digest: r.commit !== r.version_hash,
  version_hash: r.version_hash,
  created_at: r.created_at,
});

/** Names are unique in a project. */
async function refuseTakenName(tx: Tx, projectId: number, name: string, id: number): Promise<void> {
  const taken = await tx
    .selectFrom('dependent_app')
    .select('id')
    .where('project_id', '=', projectId)
    .where('name', '=', name)
    .where('id', '!=', id)
    .executeTakeFirst();
  if (taken) throw new ConflictError(`name: dependent app ${taken.id} of project ${projectId} is named "${name}" already`);
}

/** The devices that may run the project (its members, and those its releases list): the gateways whose targets its dependent apps are in. */
export async function gatewaysOf(db: ServerDb, projectId: number): Promise<string[]> {
  const [members, listed] = await Promise.all([
    db.selectFrom('project_device').select('device_id').where('project_id', '=', projectId).execute(),
    db
      .selectFrom('release_device')
      .innerJoin('release', 'release.id', 'release_device.release_id')
      .select('release_device.device_id')
      .where('release.project_id', '=', projectId)
      .distinct()
      .execute(),
  ]);
  return [...new Set([...members, ...listed].map((d) => d.device_id))];
}
