// Converts balena-format app definitions (the v3 `apps` object of a target state, as found in a
// preloaded apps.json) into Bosun's target state. Compose keys Bosun does not support are dropped
// and reported, as the balena Supervisor does.
import { ServiceSchema, type AppTarget, type ServiceTarget, type TargetState } from './targetState.js';
import { ValidationError } from './errors.js';

interface BalenaService {
  id?: number;
  image_id?: number;
  image: string;
  running?: boolean;
  environment?: Record<string, string>;
  labels?: Record<string, string>;
  composition?: Record<string, unknown>;
}

interface BalenaApp {
  id: number;
  name: string;
  releases?: Record<string, { id: number; services?: Record<string, BalenaService>; volumes?: Record<string, unknown>; networks?: Record<string, unknown> }>;
}

const SUPPORTED = new Set(Object.keys(ServiceSchema.properties));

export function fromBalenaApps(
  json: { config?: Record<string, string>; apps?: Record<string, BalenaApp> },
  dropped: string[] = [],
): TargetState {
  if (typeof json !== 'object' || json === null || typeof json.apps !== 'object' || json.apps === null) {
    throw new ValidationError('/apps', 'expected an object of apps', 'apps.json');
  }
  const apps: Record<string, AppTarget> = {};
  for (const [uuid, app] of Object.entries(json.apps)) {
    if (typeof app?.id !== 'number') throw new ValidationError(`/apps/${uuid}/id`, 'expected an app id', 'apps.json');
    const [commit, release] = Object.entries(app.releases ?? {})[0] ?? [];
    if (!commit || !release) continue; // an app without a release runs nothing
    const services: Record<string, ServiceTarget> = {};
    for (const [name, svc] of Object.entries(release.services ?? {})) {
      const composition: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(svc.composition ?? {})) {
        if (SUPPORTED.has(key)) composition[key] = value;
        else dropped.push(`${name}.${key}`);
      }
      services[name] = {
        ...(composition as Partial<ServiceTarget>),
        image: svc.image,
        ...(svc.running !== undefined ? { running: svc.running } : {}),
        environment: { ...(composition.environment as Record<string, string> | undefined), ...svc.environment },
        labels: { ...(composition.labels as Record<string, string> | undefined), ...svc.labels },
      };
    }
    apps[String(app.id)] = {
      name: app.name,
      uuid,
      release: {
        id: release.id,
        commit,
        services,
        ...(release.volumes ? { volumes: release.volumes as AppTarget['release']['volumes'] } : {}),
        ...(release.networks ? { networks: release.networks as AppTarget['release']['networks'] } : {}),
      },
    };
  }
  return { ...(json.config ? { config: json.config } : {}), apps };
}
