// Provisioning keys: a key lets new devices register, fleet-wide or into one project. Only its
// digest is stored; revoking one marks it, and it no longer works.
import { NotFoundError, UnauthorizedError, ValidationError } from '../../shared/errors.js';
import { digest, newKey } from '../auth/deviceKeys.js';
import { nowIso, type ServerDb } from '../db/database.js';

export interface ProvisioningKey {
  id: number;
  name: string;
  project: number | null;
  created_at: string;
}

/** The key a registration was made with: its id and the project its devices join. */
export interface ProvisioningGrant {
  id: number;
  project_id: number | null;
}

export class ProvisioningKeys {
  constructor(private readonly db: ServerDb) {}

  /** The keys not revoked. */
  async list(): Promise<ProvisioningKey[]> {
    const rows = await this.db
      .selectFrom('provisioning_key')
      .select(['id', 'name', 'project_id', 'created_at'])
      .where('revoked_at', 'is', null)
      .orderBy('id')
      .execute();
    return rows.map(({ project_id, ...r }) => ({ ...r, project: project_id }));
  }

  /** A new key (its clear text returned this once), into `project` when given. */
  async create(name: string, project: number | null): Promise<ProvisioningKey & { key: string }> {
    if (project !== null && !(await this.db.selectFrom('project').select('id').where('id', '=', project).executeTakeFirst())) {
      throw new ValidationError('/project', `no project ${project}`, 'provisioning key');
    }
    const key = newKey('bsp');
    const row = await this.db
      .insertInto('provisioning_key')
      .values({ name, key_hash: digest(key), project_id: project, created_at: nowIso(), revoked_at: null })
      .returning(['id', 'name', 'project_id', 'created_at'])
      .executeTakeFirstOrThrow();
    return { id: row.id, name: row.name, project: row.project_id, created_at: row.created_at, key };
  }

  async revoke(id: number): Promise<void> {
    const { numUpdatedRows } = await this.db
      .updateTable('provisioning_key')
      .set({ revoked_at: nowIso() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (!numUpdatedRows) throw new NotFoundError(`no provisioning key ${id}`);
  }

  /** The key sent in clear, if it is one not revoked whose project (if any) still exists; else an UnauthorizedError. */
  async authenticate(key: string): Promise<ProvisioningGrant> {
    const row = await this.db
      .selectFrom('provisioning_key')
      .leftJoin('project', 'project.id', 'provisioning_key.project_id')
      .select(['provisioning_key.id', 'provisioning_key.project_id', 'project.id as project'])
      .where('provisioning_key.key_hash', '=', digest(key))
      .where('provisioning_key.revoked_at', 'is', null)
      .executeTakeFirst();
    if (!row) throw new UnauthorizedError('invalid or revoked provisioning key');
    if (row.project_id !== null && row.project === null) throw new UnauthorizedError(`the provisioning key's project ${row.project_id} no longer exists`);
    return { id: row.id, project_id: row.project_id };
  }
}
