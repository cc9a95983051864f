// API tokens for users and scripts (`Authorization: APIToken <token>` or `Bearer <token>`). Only a
// SHA-256 digest is stored: a leaked database does not leak usable tokens. The token is shown once,
// when it is created.
import { createHash, randomBytes } from 'node:crypto';
import { NotFoundError } from '../../shared/errors.js';
import { nowIso, type ServerDb } from '../db/database.js';

export interface TokenInfo {
  id: number;
  name: string;
  created_at: string;
  expires_at: string | null;
}

const digest = (token: string) => createHash('sha256').update(token).digest('hex');

export class ApiTokens {
  constructor(private readonly db: ServerDb) {}

  /** Creates a token; the returned `token` is never stored and cannot be shown again. */
  async create(name: string, expiresAt: string | null = null): Promise<TokenInfo & { token: string }> {
    const token = `bsn_${randomBytes(32).toString('base64url')}`;
    const row = await this.db
      .insertInto('api_token')
      .values({ name, token_hash: digest(token), created_at: nowIso(), expires_at: expiresAt, revoked_at: null })
      .returning(['id', 'name', 'created_at', 'expires_at'])
      .executeTakeFirstOrThrow();
    return { ...row, token };
  }

  /** The token's record if it is known, not revoked and not expired. */
  async verify(token: string): Promise<TokenInfo | undefined> {
    const row = await this.db
      .selectFrom('api_token')
      .select(['id', 'name', 'created_at', 'expires_at'])
      .where('token_hash', '=', digest(token))
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (!row || (row.expires_at && row.expires_at <= nowIso())) return undefined;
    return row;
  }

  async list(): Promise<TokenInfo[]> {
    return this.db.selectFrom('api_token').select(['id', 'name', 'created_at', 'expires_at']).where('revoked_at', 'is', null).orderBy('id').execute();
  }

  async revoke(id: number): Promise<void> {
    const { numUpdatedRows } = await this.db
      .updateTable('api_token')
      .set({ revoked_at: nowIso() })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (!numUpdatedRows) throw new NotFoundError(`no API token ${id}`);
  }

  /** True once any token was ever created (the first start creates the admin token). */
  async any(): Promise<boolean> {
    return (await this.db.selectFrom('api_token').select('id').limit(1).executeTakeFirst()) !== undefined;
  }
}
