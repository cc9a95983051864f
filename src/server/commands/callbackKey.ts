// The key that signs the callbacks of remote commands: `X-Bosun-Signature: sha256=<hex>`, the
// HMAC-SHA256 of the request body with the key (its text, as shown) as the HMAC key. One key per
// server, created on first use and kept in the database sealed with the server key, so that every
// node of a PostgreSQL set-up signs with the same one and a copy of the database alone does not
// reveal it. The operator reads it and rotates it through the API (routes/execute.ts); a rotation
// applies to every callback sent after it, retries included.
import { createHmac } from 'node:crypto';
import { newKey } from '../auth/deviceKeys.js';
import type { SecretBox } from '../auth/secretBox.js';
import { nowIso, type ServerDb } from '../db/database.js';

export const SIGNATURE_HEADER = 'x-bosun-signature';
const NAME = 'callback_key';

/** The signature header's value for a body. */
export const signature = (key: string, body: string) => `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;

export interface CallbackKeyInfo {
  key: string;
  created_at: string;
}

export class CallbackKey {
  constructor(
    private readonly db: ServerDb,
    private readonly secrets: SecretBox,
  ) {}

  async current(): Promise<CallbackKeyInfo> {
    const read = () => this.db.selectFrom('server_secret').select(['sealed', 'created_at']).where('name', '=', NAME).executeTakeFirst();
    let row = await read();
    if (!row) {
      // two nodes creating it at once: the first insert wins and both read that one
      await this.db
        .insertInto('server_secret')
        .values({ name: NAME, sealed: this.secrets.seal(newKey('bsc')), created_at: nowIso() })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      row = (await read())!;
    }
    return { key: this.secrets.open(row.sealed), created_at: row.created_at };
  }

  async rotate(): Promise<CallbackKeyInfo> {
    const info = { key: newKey('bsc'), created_at: nowIso() };
    const row = { sealed: this.secrets.seal(info.key), created_at: info.created_at };
    await this.db
      .insertInto('server_secret')
      .values({ name: NAME, ...row })
      .onConflict((oc) => oc.column('name').doUpdateSet(row))
      .execute();
    return info;
  }
}
