// Start-up facts and wiring of the agent: its config.json and update locks, the device's
// identity, the engine's data root, and the local command API.
import type Docker from 'dockerode';
import fsp from '../shared/fsAsync.js';
import type { Agent } from './agent.js';
import { lazyApi, startApiServer, type ApiServer } from './api/apiServer.js';
import { newUuid, readConfigJson, writeConfigJson, type ConfigJson } from './config/configJson.js';
import { engineErrorMessage, withDeadline } from './engine/deadline.js';
import type { EventLog } from './eventLog.js';
import { UpdateLocks } from './locks/updateLock.js';
import type { DeviceIdentity } from './reconciler/serviceEnvironment.js';
import { Unik } from './unik/unikServer.js';

/** config.json, with a uuid of its own from the first start on. */
export async function loadConfig(configPath: string): Promise<ConfigJson & { uuid: string }> {
  const config = await readConfigJson(configPath);
  if (config.uuid) return { ...config, uuid: config.uuid };
  const withUuid = { ...config, uuid: await newUuid() };
  await writeConfigJson(configPath, withUuid);
  return withUuid;
}

/** The update locks; what a previous run of the agent held is released. */
export async function openLocks(lockRoot: string, log: EventLog): Promise<UpdateLocks> {
  const locks = new UpdateLocks(lockRoot);
  const stale = await locks.removeStaleAgentLocks();
  if (stale) log.info(`Removed ${stale} update lock file(s) left by a previous run of the agent`);
  return locks;
}

/**
 * AutoPi's local command API: the port is bound now, the API (fastify, the commands) loaded on
 * its first request. A port taken by something else leaves it off; the agent runs on.
 */
export async function startCommandApi(agent: Agent, port: number, address: string): Promise<ApiServer | undefined> {
  const load = lazyApi(async () => (await import('./commands/localCommandApi.js')).buildLocalCommandApi(agent, address));
  try {
    const api = await startApiServer(agent, 'Local command API', load, port, address);
    agent.log.info(`Local command API listening on ${address}:${api.port}`);
    return api;
  } catch (err) {
    agent.log.error(`Local command API not started on ${address}:${port}: ${(err as Error).message}`);
    return undefined;
  }
}

/** The UniK API, when asked for (`unikPort`): its port binds now, its routes and providers load with the first request. */
export async function startUnik(agent: Agent, onChange: () => void): Promise<Unik | undefined> {
  const { unikPort, unikAddress, engineScope, dataDir } = agent.opts;
  if (unikPort === undefined) return undefined;
  const unik = new Unik({ docker: agent.docker, scope: engineScope, dataDir, log: agent.log, onChange });
  await unik.listen(agent, unikPort, unikAddress ?? '127.0.0.1');
  return unik;
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'aarch64', arm: 'armv7hf', ia32: 'i386' };

/** Who the device is: config.json's word, else what this machine is. `config.uuid` is set by then. */
export async function deviceIdentity(config: ConfigJson & { uuid: string }): Promise<DeviceIdentity> {
  return {
    uuid: config.uuid,
    type: config.deviceType ?? `generic-${ARCH[process.arch] ?? process.arch}`,
    arch: config.deviceArch ?? ARCH[process.arch] ?? process.arch,
    name: config.initialDeviceName ?? config.uuid.slice(0, 7),
    osVersion: await osVersion(),
  };
}

async function osVersion(): Promise<string | undefined> {
  const text = await fsp.readFile('/etc/os-release', 'utf8').catch(() => '');
  return text.match(/^PRETTY_NAME="?([^"\n]*)"?/m)?.[1];
}

/** Where the engine keeps its data (for the free-disk check of pulls); undefined when it cannot be reached yet. */
export async function engineDataRoot(docker: Docker, log: EventLog): Promise<string | undefined> {
  try {
    // @types/dockerode lacks info()'s options; dockerode takes an abortSignal there as everywhere.
    const info = (await withDeadline((d) => (docker.info as (o: object) => Promise<unknown>).call(docker, d), 10_000)) as { DockerRootDir?: string };
    return info.DockerRootDir;
  } catch (err) {
    log.warn(`Engine not reachable yet: ${engineErrorMessage(err)}`);
    return undefined;
  }
}
