// Converts balena-format app definitions into Bosun's target state: the v3 `apps` object of a
// target state (as found in a preloaded apps.json) and the v2 local-mode target the balena CLI
// posts. Compose keys Bosun does not support are dropped and reported, as the balena Supervisor does.
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

export function fromBalenaApps(json: { config?: Record<string, string>; apps?: Record<string, BalenaApp> }, dropped: string[] = []): TargetState {
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
      const composition = fromCompose(name, svc.composition ?? {}, dropped);
      services[name] = {
        ...composition,
        image: svc.image,
        ...(svc.running !== undefined ? { running: svc.running } : {}),
        environment: { ...composition.environment, ...svc.environment },
        labels: { ...composition.labels, ...svc.labels },
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

/** Compose keys in snake_case (Bosun's) or camelCase (balena's internal form) → Bosun's service keys. */
function fromCompose(service: string, composition: Record<string, unknown>, dropped: string[]): Partial<ServiceTarget> {
  const out: Record<string, unknown> = {};
  for (const [rawKey, value] of Object.entries(composition)) {
    const key = rawKey.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if (value === null || value === undefined) continue; // e.g. `command: null`: the image's own
    if (key === 'networks' && typeof value === 'object' && !Array.isArray(value)) {
      out.networks = Object.keys(value);
      for (const [net, cfg] of Object.entries(value)) if (cfg) dropped.push(...Object.keys(cfg).map((k) => `${service}.networks.${net}.${k}`));
    } else if (SUPPORTED.has(key)) out[key] = value;
    else if (!IGNORED.has(key)) dropped.push(`${service}.${rawKey}`);
  }
  return out as Partial<ServiceTarget>;
}

/** balena bookkeeping that is not compose configuration */
const IGNORED = new Set(['service_name', 'image_id', 'service_id', 'release_id', 'app_id', 'image', 'contract']);

interface BalenaLocalApp {
  name?: string;
  commit?: string;
  /** the CLI sends it as a string */
  releaseId?: number | string;
  services?: Record<string, Record<string, unknown> & { serviceName?: string; image?: string }>;
  volumes?: Record<string, unknown>;
  networks?: Record<string, { driver?: string; internal?: boolean; labels?: Record<string, string>; ipam?: { config?: unknown } }>;
}

/** The v2 local-mode target (`POST /v2/local/target-state`, as `balena push <device>` sends it). */
export function fromBalenaLocalTarget(body: unknown, dropped: string[] = []): TargetState {
  const local = (body as { local?: { name?: string; config?: Record<string, string>; apps?: Record<string, BalenaLocalApp> } } | null)?.local;
  if (typeof local !== 'object' || local === null) throw new ValidationError('/local', 'expected the local target state object', 'local target state');
  if (typeof local.apps !== 'object' || local.apps === null) throw new ValidationError('/local/apps', 'expected an object of apps', 'local target state');
  const apps: Record<string, AppTarget> = {};
  for (const [appId, app] of Object.entries(local.apps)) {
    if (typeof app !== 'object' || app === null) throw new ValidationError(`/local/apps/${appId}`, 'expected an app object', 'local target state');
    const services: Record<string, ServiceTarget> = {};
    for (const [serviceId, svc] of Object.entries(app.services ?? {})) {
      const name = svc?.serviceName;
      if (typeof name !== 'string' || !name)
        throw new ValidationError(`/local/apps/${appId}/services/${serviceId}/serviceName`, 'expected a service name', 'local target state');
      const { serviceName: _n, image, ...composition } = svc;
      services[name] = { ...fromCompose(name, composition, dropped), image: image as string };
    }
    const networks = Object.fromEntries(
      Object.entries(app.networks ?? {}).map(([n, cfg]) => [
        n,
        {
          ...(cfg?.driver ? { driver: cfg.driver } : {}),
          ...(cfg?.internal !== undefined ? { internal: cfg.internal } : {}),
          ...(cfg?.labels ? { labels: cfg.labels } : {}),
          ...(Array.isArray(cfg?.ipam?.config) && cfg.ipam.config.length ? { ipam: { config: cfg.ipam.config } } : {}),
        },
      ]),
    );
    apps[appId] = {
      name: app.name ?? `local-${appId}`,
      uuid: appId,
      release: {
        id: app.releaseId === undefined ? 1 : Number(app.releaseId),
        commit: app.commit ?? 'local',
        services,
        ...(app.volumes ? { volumes: app.volumes as AppTarget['release']['volumes'] } : {}),
        networks: networks as AppTarget['release']['networks'],
      },
    };
  }
  return { ...(local.name ? { name: local.name } : {}), ...(local.config ? { config: local.config } : {}), apps };
}
