// What an agent is started with (main.ts from its command line, tests and benchmarks directly).
import type { DependentsDeps } from './dependent/dependents.js';
import type { EventLog } from './eventLog.js';
import type { HostOptions } from './host/host.js';
import type { MigrationProcess } from './store/database.js';

export interface AgentOptions {
  dataDir: string;
  /** balena-format config.json; default `<dataDir>/config.json` */
  configPath?: string;
  dockerHost?: string;
  /** local mode: a target-state file, applied at start and whenever it changes */
  targetFile?: string;
  /** balena preload file; becomes the target on first boot when no target exists */
  appsJsonPath?: string;
  /** periodic re-check while converged */
  intervalMs?: number;
  /**
   * Only for agents sharing one engine (tests, benchmarks, simulated fleets): the agent then owns
   * only what it created under this scope. A device's agent runs without one.
   */
  engineScope?: string;
  /** pulls fail (for that service) when the engine's disk would drop below this; default 100 MiB */
  minFreeDiskBytes?: number;
  /** device API port: default config.json `listenPort`, else 48484; 0 = any free port; false = no API */
  apiPort?: number | false;
  /** where the device API listens; default all interfaces (containers reach it at their network's gateway) */
  apiAddress?: string;
  /** the host backend; default a sandbox under `<dataDir>/host` (main.ts uses the real one on devices) */
  host?: HostOptions;
  /** local mode (balena CLI development), also on through config.json or SUPERVISOR_LOCAL_MODE */
  localMode?: boolean;
  /** in local mode only: expose the engine's socket on this TCP address (`127.0.0.1:2375`) for the balena CLI */
  engineTcp?: string;
  /** AutoPi's local command API (AutoPi's port is 9000): its port, 0 = any free one; absent = off */
  commandApiPort?: number;
  /** where it listens (and the one Host it answers besides loopback); default 127.0.0.1 */
  commandApiAddress?: string;
  /** the UniK API (src/agent/unik): its port, 0 = any free one; absent = off (main.ts: 3000 unless `--unik-port off`) */
  unikPort?: number;
  /** where it listens; default 127.0.0.1 (it has no auth, like UniK's daemon) */
  unikAddress?: string;
  /** a release is deployed once its services ran this long without a restart (ms); default 30 s (src/shared/deployments.ts) */
  settleMs?: number;
  /** sample the device's own metrics as telemetry this often (ms; 0 = off); default config.json `metricsInterval` */
  metricsIntervalMs?: number;
  log?: EventLog;
  /** a gateway's hook timing and asset cache (tests shorten the hooks' backoff) */
  dependents?: Pick<DependentsDeps, 'hookTimeoutMs' | 'hookBackoff' | 'assetCacheBytes'>;
  /** run pending database migrations in this child process (main.ts: the agent itself) instead of in process */
  migrationProcess?: MigrationProcess;
}
