// Projects: a project groups releases and the devices that run them. Its devices are its members
// (`project_device`); its name and default registry are part of its devices' targets, so a change
// refreshes them (targetWrites.ts).
import { NotFoundError, ValidationError } from '../../shared/errors.js';
import { inChunks, nowIso, type ServerDb } from '../db/database.js';
import { refuseUnknownDevices } from './devices.js';
import type { TargetWrites, Tx } from './targetWrites.js';

export interface Project {
  id: number;
  name: string;
  description: string;
  default_registry: number | null;
  devices: string[];
}
export interface ProjectInput {
  name: string;
  description?: string;
  default_registry?: number | null;
  devices?: string[];
}
export type ProjectPatch = Partial<ProjectInput>;

type ProjectRow = { id: number; name: string; description: string; default_registry_id: number | null };

export class Projects {
  private readonly db: ServerDb;

  constructor(private readonly writes: TargetWrites) {
    this.db = writes.db;
  }

  async list(): Promise<Project[]> {
    const rows = await this.db.selectFrom('project').selectAll().orderBy('id').execute();
    return Promise.all(rows.map((r) => this.withDevices(r)));
  }

  async get(id: number): Promise<Project> {
    const row = await this.db.selectFrom('project').selectAll().where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError(`no project ${id}`);
    return this.withDevices(row);
  }

  async create(body: ProjectInput): Promise<Project> {
    await this.checkReferences(body);
    const id = await this.writes.commit(
      async (tx) => {
        const row = await tx
          .insertInto('project')
          .values({ name: body.name, description: body.description ?? '', default_registry_id: body.default_registry ?? null, created_at: nowIso() })
          .returning('id')
          .executeTakeFirstOrThrow();
        await setMembers(tx, row.id, body.devices ?? []);
        return row.id;
      },
      () => [], // no release yet: no target changes
    );
    return this.get(id);
  }

  /** PUT: the project becomes `body` (no description, registry or devices where it gives none). */
  replace(id: number, body: ProjectInput): Promise<Project> {
    return this.patch(id, { description: '', default_registry: null, devices: [], ...body });
  }

  async patch(id: number, body: ProjectPatch): Promise<Project> {
    await this.get(id);
    await this.checkReferences(body);
    await this.writes.commit(
      async (tx) => {
        const set = {
          ...(body.name !== undefined ? { name: body.name } : {}),
          ...(body.description !== undefined ? { description: body.description } : {}),
          ...(body.default_registry !== undefined ? { default_registry_id: body.default_registry } : {}),
        };
        if (Object.keys(set).length) await tx.updateTable('project').set(set).where('id', '=', id).execute();
        if (body.devices) await setMembers(tx, id, body.devices);
      },
      () => 'all', // the app's name or default registry may be in device targets
    );
    return this.get(id);
  }

  /** Its devices stop running its release. */
  async remove(id: number): Promise<void> {
    await this.get(id);
    await this.writes.commit(
      async (tx) => {
        await tx.deleteFrom('project_device').where('project_id', '=', id).execute();
        await tx.deleteFrom('project').where('id', '=', id).execute();
      },
      () => 'all',
    );
  }

  private async withDevices(row: ProjectRow): Promise<Project> {
    const devices = await this.db.selectFrom('project_device').select('device_id').where('project_id', '=', row.id).orderBy('device_id').execute();
    return { id: row.id, name: row.name, description: row.description, default_registry: row.default_registry_id, devices: devices.map((d) => d.device_id) };
  }

  /** A registry or device that does not exist is the caller's mistake: 400 naming the field. */
  private async checkReferences(body: ProjectPatch): Promise<void> {
    if (body.default_registry != null) {
      const found = await this.db.selectFrom('registry').select('id').where('id', '=', body.default_registry).executeTakeFirst();
      if (!found) throw new ValidationError('/default_registry', `no registry ${body.default_registry}`, 'project');
    }
    await refuseUnknownDevices(this.db, body.devices ?? [], 'project');
  }
}

/** The project's members become `devices`. */
async function setMembers(tx: Tx, projectId: number, devices: string[]): Promise<void> {
  await tx.deleteFrom('project_device').where('project_id', '=', projectId).execute();
  for (const part of inChunks(devices))
    await tx
      .insertInto('project_device')
      .values(part.map((device_id) => ({ project_id: projectId, device_id })))
      .execute();
}
