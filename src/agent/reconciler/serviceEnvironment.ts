// The environment the agent gives every service container, balena-compatible:
// each BALENA_* name also as its legacy RESIN_* twin and as Bosun's own BOSUN_* name.
// User environment wins over these (the caller spreads it on top).
import type { AppTarget } from '../../shared/targetState.js';

export interface DeviceIdentity {
  uuid: string;
  type: string;
  arch: string;
  name: string;
  osVersion?: string;
}

/** How containers reach the agent's device API. */
export interface SupervisorApiInfo {
  port: number;
  keyForApp(appId: number): string;
}

export const LOCK_PATH_IN_CONTAINER = '/tmp/balena/updates.lock';
export const HANDOVER_PATH_IN_CONTAINER = '/tmp/balena/handover-complete';

interface EnvInput {
  appId: number;
  app: AppTarget;
  serviceName: string;
  device: DeviceIdentity;
  api: SupervisorApiInfo | undefined;
  hostNetwork: boolean;
}

function withTwins(vars: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(vars)) {
    out[`BALENA_${k}`] = v;
    out[`RESIN_${k}`] = v;
    out[`BOSUN_${k}`] = v;
  }
  return out;
}

export function serviceEnvironment(input: EnvInput): Record<string, string> {
  const { appId, app, serviceName, device, api } = input;
  const vars: Record<string, string> = {
    APP_ID: String(appId),
    APP_UUID: app.uuid ?? String(appId),
    APP_NAME: app.name,
    SERVICE_NAME: serviceName,
    DEVICE_UUID: device.uuid,
    DEVICE_TYPE: device.type,
    DEVICE_ARCH: device.arch,
    APP_LOCK_PATH: LOCK_PATH_IN_CONTAINER,
    SERVICE_HANDOVER_COMPLETE_PATH: HANDOVER_PATH_IN_CONTAINER,
  };
  if (device.osVersion) vars.HOST_OS_VERSION = device.osVersion;
  if (api) {
    vars.SUPERVISOR_PORT = String(api.port);
    vars.SUPERVISOR_API_KEY = api.keyForApp(appId);
    // Other network modes learn the host at create time (supervisorAddressEnv): it is the
    // gateway of the network the container joins, known only once that network exists.
    if (input.hostNetwork) Object.assign(vars, supervisorAddress('127.0.0.1', api.port));
  }
  return {
    ...withTwins(vars),
    BALENA: '1',
    RESIN: '1',
    BOSUN: '1',
    RESIN_SERVICE_KILL_ME_PATH: HANDOVER_PATH_IN_CONTAINER,
  };
}

function supervisorAddress(host: string, port: number | string): Record<string, string> {
  return { SUPERVISOR_HOST: host, SUPERVISOR_ADDRESS: `http://${host}:${port}` };
}

/** The API's address for a container reaching the agent through its network's gateway. */
export function supervisorAddressEnv(host: string, port: number | string): Record<string, string> {
  return withTwins(supervisorAddress(host, port));
}

/** Set at create time only: renaming the device must not recreate its containers. */
export function createOnlyEnvironment(device: DeviceIdentity): Record<string, string> {
  return withTwins({ DEVICE_NAME_AT_INIT: device.name });
}
