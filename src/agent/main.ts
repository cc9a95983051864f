#!/usr/bin/env node
// bosun-agent: the on-device agent.
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_SETTLE_MS } from '../shared/deployments.js';
import { Agent } from './agent.js';
import { DEFAULT_UNIK_PORT } from './unik/unikServer.js';
import { migrateDatabaseFile } from './store/database.js';

const positiveInt = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
};

const port = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number');
  return n;
};

interface Options {
  migrateDatabase?: string;
  dataDir: string;
  config?: string;
  target?: string;
  appsJson?: string;
  dockerHost?: string;
  interval: number;
  minFreeDisk: number;
  settleTime: number;
  engineScope?: string;
  apiPort?: number;
  apiAddress: string;
  hostSandbox?: string;
  led?: string;
  localMode?: boolean;
  engineTcp?: string | true;
  metricsInterval?: number;
  commandApiPort: number | false;
  commandApiAddress: string;
  unikPort: number | false;
  unikAddress: string;
}

const program = new Command('bosun-agent')
  .description('Bosun device agent: converges the local Docker Engine onto a target state')
  .option('-d, --data-dir <dir>', 'state folder (database, locks, config.json)', process.env.BOSUN_DATA_DIR ?? '/var/lib/bosun')
  .option('-c, --config <file>', 'balena-format config.json (default: <data-dir>/config.json)')
  .option('-t, --target <file>', 'local mode: apply this target-state JSON file and follow its changes')
  .option('--apps-json <file>', 'preload file used on first boot (default: <data-dir>/apps.json)')
  .option('--docker-host <url>', 'engine address (default: $DOCKER_HOST or the local socket)')
  .option('--interval <ms>', 'periodic re-check while converged', positiveInt, 60_000)
  .option('--min-free-disk <MiB>', 'keep at least this much free on the engine disk when pulling', positiveInt, 100)
  .option(
    '--settle-time <s>',
    'a release counts as deployed once its services ran this long without a restart (and healthy, where they have a healthcheck)',
    positiveInt,
    DEFAULT_SETTLE_MS / 1000,
  )
  .option('--engine-scope <name>', 'share the engine with other agents: own only what this scope created (tests, simulators)', process.env.BOSUN_ENGINE_SCOPE)
  .option('--api-port <port>', 'device API port (default: listenPort of config.json, else 48484)', port)
  .option('--api-address <ip>', 'device API listen address (containers reach it at their network gateway)', '0.0.0.0')
  .option('--host-sandbox <dir>', 'development: record reboot/shutdown/blink and write host files under <dir> instead of acting on this machine')
  .option('--led <sysfs-dir>', 'LED used by blink, e.g. /sys/class/leds/led0')
  .option('--local-mode', 'local mode: follow targets pushed with the balena CLI (no API key needed)')
  .option('--engine-tcp [address]', 'local mode only: expose the engine on TCP for the balena CLI (default 127.0.0.1:2375)')
  .option(
    '--metrics-interval <ms>',
    "record the device's cpu, memory, disk and temperature as telemetry this often; 0 = off (default: metricsInterval of config.json, else off)",
    (v) => (v === '0' ? 0 : positiveInt(v)),
  )
  .option(
    '--command-api-port <port|off>',
    "AutoPi's local command API (GET /, POST /dongle/<unit_id>/execute/ with a device API key) on this port, e.g. 9000; off by default",
    (v) => (v === 'off' ? false : port(v)),
    false,
  )
  .option('--command-api-address <ip>', 'local command API listen address (requests must name loopback or this address in Host)', '127.0.0.1')
  .option(
    '--unik-port <port|off>',
    "the UniK daemon's API (images, instances, volumes; the unik CLI works against it) on this port; no auth, like UniK's",
    (v) => (v === 'off' ? false : port(v)),
    DEFAULT_UNIK_PORT,
  )
  .option('--unik-address <ip>', 'UniK API listen address', '127.0.0.1')
  // the agent runs itself with this to migrate its database in a short-lived child (store/database.ts)
  .addOption(new Option('--migrate-database <file>').hideHelp())
  .action(async (o: Options) => {
    if (o.migrateDatabase) {
      await migrateDatabaseFile(o.migrateDatabase);
      return;
    }
    const agent = new Agent({
      dataDir: o.dataDir,
      ...(o.config ? { configPath: o.config } : {}),
      ...(o.target ? { targetFile: o.target } : {}),
      ...(o.appsJson ? { appsJsonPath: o.appsJson } : {}),
      ...(o.dockerHost ? { dockerHost: o.dockerHost } : {}),
      intervalMs: o.interval,
      minFreeDiskBytes: o.minFreeDisk * 1024 * 1024,
      settleMs: o.settleTime * 1000,
      ...(o.engineScope ? { engineScope: o.engineScope } : {}),
      ...(o.apiPort !== undefined ? { apiPort: o.apiPort } : {}),
      apiAddress: o.apiAddress,
      host: o.hostSandbox ? { kind: 'sandbox', root: o.hostSandbox } : { kind: 'system', ...(o.led ? { ledPath: o.led } : {}) },
      ...(o.localMode ? { localMode: true } : {}),
      ...(o.engineTcp ? { engineTcp: o.engineTcp === true ? '127.0.0.1:2375' : o.engineTcp } : {}),
      ...(o.metricsInterval !== undefined ? { metricsIntervalMs: o.metricsInterval } : {}),
      ...(o.commandApiPort !== false ? { commandApiPort: o.commandApiPort, commandApiAddress: o.commandApiAddress } : {}),
      ...(o.unikPort !== false ? { unikPort: o.unikPort, unikAddress: o.unikAddress } : {}),
      migrationProcess: { execPath: process.execPath, args: [...process.execArgv, process.argv[1]!] },
    });
    const shutdown = (signal: string) => {
      agent.log.info(`Received ${signal}; stopping (apps keep running)`);
      agent.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
    try {
      await agent.start();
    } catch (err) {
      agent.log.logger.fatal((err as Error).message);
      process.exit(1);
    }
  });

// not a top-level await: the device bundle is CommonJS (scripts/bundle-agent.mjs)
program.parseAsync().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
