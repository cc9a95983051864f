// Registries: credentials devices use to pull images. The password is write-only: never returned,
// never logged, sealed at rest with the server key (and in the devices' stored targets). A url is
// checked as the device targets use it before anything is stored; a change reaches the targets of
// the devices pulling through the registry (targetWrites.ts).
import { ConflictError, NotFoundError, ValidationError } from '../../shared/errors.js';
import type { SecretBox } from '../auth/secretBox.js';
import { nowIso, type ServerDb } from '../db/database.js';
import { registryHost } from '../targets/imageReference.js';
import type { TargetWrites } from './targetWrites.js';

export interface Registry {
  id: number;
  url: string;
  username: string;
}
export interface RegistryInput {
  url: string;
  username: string;
  password: string;
}
export type RegistryPatch = Partial<RegistryInput>;

const columns = ['id', 'url', 'username'] as const;

/** A url the device targets could not use (releaseTarget.ts) is refused; it is not echoed: it may hold credentials. */
function checkUrl(url: string | undefined): void {
  if (url !== undefined && !registryHost(url)) {
    const what = 'not a registry address: host[:port][/namespace], optionally with a scheme (https://registry.example.com:5000)';
    throw new ValidationError('/url', what, 'registry');
  }
}

export class Registries {
  private readonly db: ServerDb;

  constructor(
    private readonly writes: TargetWrites,
    private readonly secrets: SecretBox,
  ) {
    this.db = writes.db;
  }

  list(): Promise<Registry[]> {
    return this.db.selectFrom('registry').select(columns).orderBy('id').execute();
  }

  async get(id: number): Promise<Registry> {
    const row = await this.db.selectFrom('registry').select(columns).where('id', '=', id).executeTakeFirst();
    if (!row) throw new NotFoundError(`no registry ${id}`);
    return row;
  }

  /** No target names a new registry yet: nothing to refresh. */
  async create(body: RegistryInput): Promise<Registry> {
    checkUrl(body.url);
    const { password, ...plain } = body;
    const row = { ...plain, password_sealed: this.secrets.seal(password), created_at: nowIso() };
    return this.db.insertInto('registry').values(row).returning(columns).executeTakeFirstOrThrow();
  }

  /** PUT and PATCH: the password may be left out to keep the stored one (it is never shown). */
  async update(id: number, body: RegistryPatch): Promise<Registry> {
    checkUrl(body.url);
    await this.get(id);
    const { password, ...plain } = body;
    if (Object.keys(body).length) {
      const set = { ...plain, ...(password !== undefined ? { password_sealed: this.secrets.seal(password) } : {}) };
      await this.writes.commit(
        (tx) => tx.updateTable('registry').set(set).where('id', '=', id).execute(),
        () => 'all', // devices pulling through it get the new address or credentials
      );
    }
    return this.get(id);
  }

  /** Only a registry nothing uses: no target names it. */
  async remove(id: number): Promise<void> {
    await this.get(id);
    const user = await this.db.selectFrom('project').select(['id', 'name']).where('default_registry_id', '=', id).executeTakeFirst();
    if (user) throw new ConflictError(`registry ${id} is the default registry of project ${user.id} (${user.name})`);
    const container = await this.db.selectFrom('release_container').select(['release_id', 'name']).where('registry_id', '=', id).executeTakeFirst();
    if (container) throw new ConflictError(`registry ${id} is used by container ${container.name} of release ${container.release_id}`);
    await this.db.deleteFrom('registry').where('id', '=', id).execute();
  }
}
