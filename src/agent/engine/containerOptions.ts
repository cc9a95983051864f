// ServiceSpec → the Engine API's container create request. Pure.
import type { ContainerCreateOptions } from 'dockerode';
import { redactConfig, type ServiceSpec } from '../reconciler/serviceSpec.js';
import { LABEL, scopeLabel } from './labels.js';

/** Unique per (service, config, image content): a hand-over runs two side by side. */
export function containerName(spec: ServiceSpec, imageId: string): string {
  return `${spec.scope ? `${spec.scope}_` : ''}${spec.serviceName}_${spec.releaseId}_${spec.hash.slice(0, 10)}_${imageId.replace(/^sha256:/, '').slice(0, 10)}`;
}

/**
 * `service:x` network modes need x's container id, resolved by the caller at create time; so is
 * `createTimeEnv` (what only the engine knows then, e.g. the device API's address on the network).
 */
export function createOptions(
  spec: ServiceSpec,
  imageId: string,
  serviceContainerId?: (service: string) => string | undefined,
  createTimeEnv: Record<string, string> = {},
): ContainerCreateOptions {
  const c = spec.config;
  const env = { ...spec.createEnv, ...createTimeEnv, ...c.environment };
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of c.ports) {
    const m = p.match(/^(?:(.+):)?(\d*):(\d+\/\w+)$/)!;
    const [, ip = '', host = '', container] = m;
    exposed[container!] = {};
    (bindings[container!] ??= []).push({ HostIp: ip.replace(/^\[|\]$/g, ''), HostPort: host });
  }
  let networkMode: string = c.networkMode;
  if (c.networkMode === 'app') networkMode = c.networks[0]!;
  else if (c.networkMode.startsWith('service:')) {
    const target = c.networkMode.slice('service:'.length);
    const id = serviceContainerId?.(target);
    if (!id) throw new Error(`network_mode service:${target}: ${target} has no container yet`);
    networkMode = `container:${id}`;
  }
  const [policy, retries] = c.restart.split(':');
  return {
    name: containerName(spec, imageId),
    Image: c.image,
    ...(c.command ? { Cmd: c.command } : {}),
    ...(c.entrypoint ? { Entrypoint: c.entrypoint } : {}),
    Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
    Labels: {
      ...c.labels,
      [LABEL.supervised]: 'true',
      ...scopeLabel(spec.scope),
      [LABEL.appId]: String(spec.appId),
      [LABEL.appUuid]: spec.appUuid,
      [LABEL.serviceName]: spec.serviceName,
      [LABEL.releaseId]: String(spec.releaseId),
      [LABEL.commit]: spec.commit,
      [LABEL.configHash]: spec.hash,
      [LABEL.config]: JSON.stringify(redactConfig(c)),
      [LABEL.dependsOn]: spec.dependsOn.join(','),
    },
    ...(c.workingDir ? { WorkingDir: c.workingDir } : {}),
    ...(c.user ? { User: c.user } : {}),
    ...(c.stopSignal ? { StopSignal: c.stopSignal } : {}),
    StopTimeout: c.stopTimeout,
    ...(c.healthcheck
      ? {
          Healthcheck: {
            Test: c.healthcheck.test,
            Interval: c.healthcheck.intervalNs,
            Timeout: c.healthcheck.timeoutNs,
            StartPeriod: c.healthcheck.startPeriodNs,
            Retries: c.healthcheck.retries,
          },
        }
      : {}),
    ExposedPorts: exposed,
    HostConfig: {
      Binds: [...c.binds, ...c.volumes],
      PortBindings: bindings,
      NetworkMode: networkMode,
      RestartPolicy: { Name: policy!, ...(retries ? { MaximumRetryCount: Number(retries) } : {}) },
      Privileged: c.privileged,
      CapAdd: c.capAdd,
      CapDrop: c.capDrop,
      Devices: c.devices.map((d) => {
        const [PathOnHost, PathInContainer, CgroupPermissions] = d.split(':');
        return { PathOnHost: PathOnHost!, PathInContainer: PathInContainer!, CgroupPermissions: CgroupPermissions! };
      }),
      Memory: c.memory,
      NanoCpus: c.nanoCpus,
    },
    ...(c.networkMode === 'app' ? { NetworkingConfig: { EndpointsConfig: { [c.networks[0]!]: { Aliases: [spec.serviceName] } } } } : {}),
  };
}
