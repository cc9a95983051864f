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

/** How containers reach the agent's device API (filled in once the API serves). */
export interface SupervisorApiInfo {
  port: number;
  /** address of the agent as seen from a container on an app network */
  bridgeHost: string;
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
    const host = input.hostNetwork ? '127.0.0.1' : api.bridgeHost;
    Object.assign(vars, {
      SUPERVISOR_HOST: host,
      SUPERVISOR_PORT: String(api.port),
      SUPERVISOR_ADDRESS: `http://${host}:${api.port}`,
      SUPERVISOR_API_KEY: api.keyForApp(appId),
    });
  }
  return {
    ...withTwins(vars),
    BALENA: '1',
    RESIN: '1',
    BOSUN: '1',
    RESIN_SERVICE_KILL_ME_PATH: HANDOVER_PATH_IN_CONTAINER,
  };
}

/** Set at create time only: renaming the device must not recreate its containers. */
export function createOnlyEnvironment(device: DeviceIdentity): Record<string, string> {
  return withTwins({ DEVICE_NAME_AT_INIT: device.name });
}
