// The validated target state, expanded into what the engine must hold: per app its service
// specs (hashed), networks and volumes with engine names. Pure.
import stringify from 'safe-stable-stringify';
import { sha256Hex } from '../../shared/sha256.js';
import type { NetworkTarget, TargetState, VolumeTarget } from '../../shared/targetState.js';
import { buildServiceSpec, engineObjectName, type ServiceSpec, type SpecContext } from './serviceSpec.js';

export interface NetworkSpec {
  appId: number;
  name: string;
  engineName: string;
  config: NetworkTarget;
  hash: string;
}

export interface VolumeSpec {
  appId: number;
  name: string;
  engineName: string;
  config: VolumeTarget;
}

export interface DesiredApp {
  appId: number;
  appUuid: string;
  name: string;
  releaseId: number;
  commit: string;
  services: Map<string, ServiceSpec>;
  networks: NetworkSpec[];
  volumes: VolumeSpec[];
  /** engine names of containers the agent does not manage, replaced by this release */
  removeContainers: string[];
}

export interface DesiredState {
  apps: Map<number, DesiredApp>;
}

export function buildDesiredState(target: TargetState, ctx: SpecContext): DesiredState {
  const apps = new Map<number, DesiredApp>();
  for (const [key, app] of Object.entries(target.apps)) {
    const appId = Number(key);
    const services = new Map<string, ServiceSpec>();
    for (const [name, svc] of Object.entries(app.release.services)) {
      services.set(name, buildServiceSpec(appId, app, name, svc, target, ctx));
    }
    // Every app gets a `default` network so its services reach each other by name.
    const networks = { default: {}, ...(app.release.networks ?? {}) };
    apps.set(appId, {
      appId,
      appUuid: app.uuid ?? key,
      name: app.name,
      releaseId: app.release.id,
      commit: app.release.commit,
      services,
      removeContainers: app.release.remove_containers ?? [],
      networks: Object.entries(networks).map(([name, config]) => ({
        appId,
        name,
        engineName: engineObjectName(appId, name, ctx.scope),
        config,
        hash: sha256Hex(stringify(config)!),
      })),
      volumes: Object.entries(app.release.volumes ?? {}).map(([name, config]) => ({
        appId,
        name,
        engineName: engineObjectName(appId, name, ctx.scope),
        config,
      })),
    });
  }
  return { apps };
}
