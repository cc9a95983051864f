// Opens the server's parts (database, tokens, secret box) and its HTTP API. The first start on an
// empty database creates an admin token, returned once so that it can be shown to the operator.
import fs from 'node:fs/promises';
import path from 'node:path';
import { ApiTokens } from './auth/apiTokens.js';
import { SecretBox } from './auth/secretBox.js';
import { buildServer, type ServerApp } from './app.js';
import { openServerDb, type ServerDb } from './db/database.js';
import { DeviceTargets } from './targets/deviceTargets.js';
import { LocalNotifier } from './targets/localNotifier.js';

export interface ServerOptions {
  dataDir: string;
  /** `postgres://…`; default: SQLite in the data dir */
  databaseUrl?: string;
  logger?: boolean;
}

export interface Server {
  app: ServerApp;
  db: ServerDb;
  tokens: ApiTokens;
  /** set on the first start only: the admin token, never stored in clear */
  firstAdminToken?: string;
  close(): Promise<void>;
}

export async function openServer(opts: ServerOptions): Promise<Server> {
  await fs.mkdir(opts.dataDir, { recursive: true });
  const db = await openServerDb({ ...(opts.databaseUrl ? { url: opts.databaseUrl } : {}), sqliteFile: path.join(opts.dataDir, 'server.sqlite') });
  try {
    const tokens = new ApiTokens(db);
    const secrets = await SecretBox.load(path.join(opts.dataDir, 'server.key'));
    const firstAdminToken = (await tokens.any()) ? undefined : (await tokens.create('admin')).token;
    const notifier = new LocalNotifier();
    const targets = new DeviceTargets(db, secrets, notifier);
    const app = await buildServer({ db, tokens, secrets, targets, notifier }, { ...(opts.logger !== undefined ? { logger: opts.logger } : {}) });
    return {
      app,
      db,
      tokens,
      ...(firstAdminToken ? { firstAdminToken } : {}),
      close: async () => {
        await notifier.close();
        await app.close();
        await db.destroy();
      },
    };
  } catch (err) {
    await db.destroy();
    throw err;
  }
}
