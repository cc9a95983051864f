// The server's services, built once per server (server.ts) and given to every route through the
// app's context: each owns its tables, and those whose writes change device targets write through
// TargetWrites, which refreshes the targets after the commit.
import type { SecretBox } from '../auth/secretBox.js';
import { CallbackKey } from '../commands/callbackKey.js';
import { DeviceCommands } from '../commands/deviceCommands.js';
import { ExecuteJobs } from '../commands/executeJobs.js';
import type { ServerDb } from '../db/database.js';
import { Presence } from '../devices/presence.js';
import type { DeviceTargets } from '../targets/deviceTargets.js';
import type { DeviceNotifier } from '../wakeups/notifier.js';
import { DependentApps } from './dependentApps.js';
import { DependentDevices } from './dependentDevices.js';
import { Devices } from './devices.js';
import { ImageDigests } from './imageDigests.js';
import { Projects } from './projects.js';
import { ProvisioningKeys } from './provisioning.js';
import { Registries } from './registries.js';
import { Releases } from './releases.js';
import { TargetWrites } from './targetWrites.js';

export interface Services {
  releases: Releases;
  projects: Projects;
  registries: Registries;
  devices: Devices;
  /** the keys new devices register with */
  provisioningKeys: ProvisioningKeys;
  /** the device command queue (long polls, results, expiry) */
  commands: DeviceCommands;
  /** remote executions (jobs over commands) */
  jobs: ExecuteJobs;
  /** the key that signs execution callbacks */
  callbackKey: CallbackKey;
  /** marks devices holding a target long poll seen (stopped when the server closes) */
  presence: Presence;
  /** dependent apps of gateway projects and their releases */
  dependentApps: DependentApps;
  /** devices behind gateways */
  dependentDevices: DependentDevices;
}

export function buildServices(d: {
  db: ServerDb;
  targets: DeviceTargets;
  notifier: DeviceNotifier;
  secrets: SecretBox;
  /** where the failures of background work (presence) go */
  onError: (err: Error) => void;
}): Services {
  const writes = new TargetWrites(d.db, d.targets);
  const commands = new DeviceCommands(d.db, d.notifier);
  return {
    releases: new Releases(writes),
    projects: new Projects(writes),
    registries: new Registries(writes, d.secrets),
    devices: new Devices(writes, d.notifier),
    provisioningKeys: new ProvisioningKeys(d.db),
    commands,
    jobs: new ExecuteJobs(d.db, commands),
    callbackKey: new CallbackKey(d.db, d.secrets),
    presence: new Presence(d.db, d.onError),
    dependentApps: new DependentApps(writes, new ImageDigests(d.secrets)),
    dependentDevices: new DependentDevices(writes),
  };
}
