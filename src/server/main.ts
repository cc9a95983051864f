#!/usr/bin/env node
// bosun-server: the control plane.
import { Command, InvalidArgumentError } from 'commander';
import { mapTiles } from './mapTiles.js';
import { openServer } from './server.js';

const port = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number');
  return n;
};

const count = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a whole number, at least 1');
  return n;
};

/** A bad setting is the operator's to fix: its message, no stack. */
const settingOrExit = <T>(check: () => T): T => {
  try {
    return check();
  } catch (err) {
    return program.error(`error: ${(err as Error).message}\n`);
  }
};

const program = new Command('bosun-server')
  .description('Bosun control plane: registries, projects, releases and devices')
  .option('-d, --data-dir <dir>', 'state folder (SQLite database, server key)', process.env.BOSUN_SERVER_DATA_DIR ?? './server-data')
  .option('--database-url <url>', 'PostgreSQL instead of SQLite (postgres://…)', process.env.BOSUN_DATABASE_URL)
  .option('-p, --port <port>', 'HTTP port', port, 8000)
  // loopback unless asked: the admin API is not on the network at first start
  .option('--host <address>', 'listen address (0.0.0.0: every interface)', process.env.BOSUN_SERVER_HOST ?? '127.0.0.1')
  .option('--log-lines <n>', 'device logs: lines kept per device', count, 10_000)
  .option('--log-days <n>', 'device logs: days a line is kept', count, 7)
  .option('--log-rate <n>', 'device logs: lines a device may send per minute (more are suppressed, with a marker)', count, 3000)
  .option('--telemetry-days <n>', 'telemetry logbook: days a data point is kept', count, 365)
  .option('--map-tiles <template>', 'map tiles under geo_point tracks in the dashboard: a URL template with {z}/{x}/{y}', process.env.BOSUN_MAP_TILES)
  .option('--map-tiles-attribution <text>', "the map tiles' attribution, shown under the map", process.env.BOSUN_MAP_TILES_ATTRIBUTION)
  .action(
    async (o: {
      dataDir: string;
      databaseUrl?: string;
      port: number;
      host: string;
      logLines: number;
      logDays: number;
      logRate: number;
      telemetryDays: number;
      mapTiles?: string;
      mapTilesAttribution?: string;
    }) => {
      const server = await openServer({
        dataDir: o.dataDir,
        ...(o.databaseUrl ? { databaseUrl: o.databaseUrl } : {}),
        logger: true,
        logs: { maxLinesPerDevice: o.logLines, maxAgeMs: o.logDays * 86_400_000, linesPerMinute: o.logRate },
        telemetry: { retentionMs: o.telemetryDays * 86_400_000 },
        ...(o.mapTiles ? { mapTiles: settingOrExit(() => mapTiles(o.mapTiles!, o.mapTilesAttribution)) } : {}),
      });
      const address = await server.app.listen({ port: o.port, host: o.host });
      if (server.firstAdminToken) {
        // shown once: only its digest is stored
        process.stdout.write(`\nFirst start: admin API token (shown once, keep it):\n  ${server.firstAdminToken}\n\n`);
      }
      process.stdout.write(`Bosun server at ${address} (API description: ${address}/openapi.json)\n`);
      const stop = () =>
        void server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    },
  );

await program.parseAsync();
