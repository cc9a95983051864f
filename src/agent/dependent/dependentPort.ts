// What the device API's dependent routes may ask of the gateway (balena's dependent-apps API), in
// the reference's shapes. Every call takes the caller's key scope: the gateway app's key reaches its
// own dependent apps and their devices, the device key all of them. Types only.
import type { KeyScope } from '../api/apiKeys.js';

/** GET /v1/dependent-apps, one entry. */
export interface DependentAppView {
  id: number;
  name: string;
  commit: string | null;
  config: Record<string, string>;
}

/** GET /v1/devices, one entry. */
export interface DependentDeviceView {
  id: number;
  uuid: string;
  appId: number;
  device_type: string;
  logs_channel: string;
  deviceId: string | null;
  is_online: boolean | null;
  name: string;
  status: string | null;
  download_progress: number | null;
  commit: string | null;
  targetCommit: string | null;
  environment: Record<string, string>;
  targetEnvironment: Record<string, string>;
  config: Record<string, string>;
  targetConfig: Record<string, string>;
}

/** GET and PUT /v1/devices/:uuid answer this (the reference's `env`/`targetEnv`). */
export type DependentDeviceDetail = Omit<DependentDeviceView, 'environment' | 'targetEnvironment' | 'config' | 'targetConfig'> & {
  env: Record<string, string>;
  targetEnv: Record<string, string>;
  /** Bosun's: why the control plane refused to register the device (null when it did not) */
  error: string | null;
};

/** POST /v1/devices answers 201 with this. */
export interface ProvisionedView {
  id: number;
  uuid: string;
  name: string;
  note: string | null;
  device_type: string;
}

/** PUT /v1/devices/:uuid (validated by the route). */
export interface DeviceUpdate {
  status?: string | null;
  is_online?: boolean | null;
  commit?: string | null;
  download_progress?: number | null;
  environment?: Record<string, string>;
  config?: Record<string, string>;
}

export interface DependentsApi {
  apps(scope: KeyScope): DependentAppView[];
  /** the tar of /assets of the app's commit, on disk (whole) */
  assets(scope: KeyScope, appId: number, commit: string): Promise<string>;
  devices(scope: KeyScope): Promise<DependentDeviceView[]>;
  device(scope: KeyScope, uuid: string): Promise<DependentDeviceDetail>;
  provision(scope: KeyScope, appId: number, deviceType: string | undefined): Promise<ProvisionedView>;
  update(scope: KeyScope, uuid: string, update: DeviceUpdate): Promise<DependentDeviceDetail>;
  log(scope: KeyScope, uuid: string, message: string, ts: Date): Promise<void>;
  /** queues the restart hook for the device */
  restart(scope: KeyScope, uuid: string): Promise<void>;
}
