// Opens the server's parts (database, tokens, secret box), builds each service once, starts their
// housekeeping and the HTTP API over them. The first start on an empty database creates an admin
// token, returned once so that it can be shown to the operator.
import fs from 'node:fs/promises';
import path from 'node:path';
import { ApiTokens } from './auth/apiTokens.js';
import { SecretBox } from './auth/secretBox.js';
import { buildServer, type ServerApp } from './app.js';
import { CallbackDelivery } from './commands/callbackDelivery.js';
import { isPostgresUrl, openServerDb, type ServerDb } from './db/database.js';
import { Logbook, type LogbookOptions } from './logbook/logbook.js';
import type { FleetTimings } from './devices/fleetFeed.js';
import type { MapTiles } from './mapTiles.js';
import { DeviceLogs, type DeviceLogsOptions } from './logs/deviceLogs.js';
import { PeriodicTask } from './periodicTask.js';
import { buildServices, type Services } from './services/index.js';
import { DeviceTargets } from './targets/deviceTargets.js';
import { LocalNotifier } from './wakeups/localNotifier.js';
import type { DeviceNotifier } from './wakeups/notifier.js';

/** Expired commands are marked and old results deleted this often, on every node. */
const COMMAND_SWEEP_EVERY_MS = 60_000;

export interface ServerOptions {
  dataDir: string;
  /** `postgres://…`; default: SQLite in the data dir */
  databaseUrl?: string;
  logger?: boolean;
  /** device logs: retention (count, age), rate limit, how often to prune */
  logs?: DeviceLogsOptions;
  /** telemetry logbook: retention, how often to prune */
  telemetry?: LogbookOptions;
  /** the built dashboard served at `/` (default: dist/web, or BOSUN_WEB_DIR) */
  webDir?: string;
  /** the fleet's event stream: how often it looks, heartbeats, a slow client's bound */
  fleet?: FleetTimings;
  /** map tiles under the dashboard's tracks (mapTiles.ts); none by default */
  mapTiles?: MapTiles;
}

export interface Server {
  app: ServerApp;
  db: ServerDb;
  tokens: ApiTokens;
  /** each device's materialised target; the services' writes refresh it (services/targetWrites.ts) */
  targets: DeviceTargets;
  /** wakes long-polling devices: in-process on SQLite, LISTEN/NOTIFY across nodes on PostgreSQL */
  notifier: DeviceNotifier;
  deviceLogs: DeviceLogs;
  logbook: Logbook;
  /** releases, projects, registries, devices, commands… (services/index.ts) */
  services: Services;
  /** set on the first start only: the admin token, never stored in clear */
  firstAdminToken?: string;
  close(): Promise<void>;
}

export async function openServer(opts: ServerOptions): Promise<Server> {
  await fs.mkdir(opts.dataDir, { recursive: true });
  // the database's and the notifier's warnings go to the app's log once there is one
  let warn = (msg: string) => process.emitWarning(msg);
  let logError = (err: Error) => process.emitWarning(err);
  const db = await openServerDb({
    ...(opts.databaseUrl ? { url: opts.databaseUrl } : {}),
    sqliteFile: path.join(opts.dataDir, 'server.sqlite'),
    onIdleConnectionError: (err) => warn(`an idle PostgreSQL connection was closed: ${err.message}`),
  });
  let notifier: DeviceNotifier | undefined;
  try {
    const tokens = new ApiTokens(db);
    const secrets = await SecretBox.load(path.join(opts.dataDir, 'server.key'));
    const firstAdminToken = (await tokens.any()) ? undefined : (await tokens.create('admin')).token;
    // several nodes may share a PostgreSQL database: a change made on one must wake devices
    // waiting on any other
    notifier = isPostgresUrl(opts.databaseUrl)
      ? await (await import('./wakeups/pgNotifier.js')).PgNotifier.open({ url: opts.databaseUrl, db, log: (m) => warn(m) })
      : new LocalNotifier();
    const targets = new DeviceTargets(db, secrets, notifier, (msg) => warn(msg));
    const deviceLogs = new DeviceLogs(db, notifier, opts.logs);
    const logbook = new Logbook(db, opts.telemetry);
    const services = buildServices({ db, targets, notifier, secrets, onError: (err) => logError(err) });
    const context = { db, tokens, secrets, targets, notifier, deviceLogs, logbook, ...services };
    const app = await buildServer(context, {
      ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
      ...(opts.webDir ? { webDir: opts.webDir } : {}),
      ...(opts.fleet ? { fleet: opts.fleet } : {}),
      ...(opts.mapTiles ? { mapTiles: opts.mapTiles } : {}),
    });
    warn = (msg) => app.log.warn(msg);
    logError = (err) => app.log.error(err);
    // every node prunes device logs, telemetry and finished commands beyond their retention
    deviceLogs.startPruning((err) => app.log.error(err));
    logbook.startPruning((err) => app.log.error(err));
    const commandSweep = new PeriodicTask(() => services.commands.sweep(), COMMAND_SWEEP_EVERY_MS);
    commandSweep.start((err) => app.log.error(err));
    // the callbacks of remote executions: every node delivers whichever are due
    const callbacks = new CallbackDelivery({ db, commands: services.commands, jobs: services.jobs, key: services.callbackKey, log: app.log });
    callbacks.start();
    const theNotifier = notifier;
    return {
      app,
      db,
      tokens,
      targets,
      notifier,
      deviceLogs,
      logbook,
      services,
      ...(firstAdminToken ? { firstAdminToken } : {}),
      close: async () => {
        // the app first: closing it answers the long polls it holds, which need the database
        await app.close();
        services.presence.stop();
        await deviceLogs.stopPruning();
        await logbook.stopPruning();
        await commandSweep.stop();
        await callbacks.close();
        await theNotifier.close();
        await db.destroy();
      },
    };
  } catch (err) {
    await notifier?.close();
    await db.destroy();
    throw err;
  }
}
