// A release's containers (AutoPi shapes) → the app a device's agent applies (Bosun's target state).
// Pure. AutoPi's release state hands `startup_parameters` to Salt's `docker_container.running` as
// keyword arguments, so they take Salt's forms (lists or comma-separated strings, `"on-failure:3"`,
// `"127.0.0.1:8080:80/udp"`) and docker-py's (dicts) alike. Every problem is a ValidationError
// naming the field of the release (`/containers/1/startup_parameters/binds/0`), so the API can
// refuse a release that cannot become a valid target before anything is stored. The parts: the
// accepted shapes (releaseSchema.ts), startupParameters.ts (with portBindings.ts), imageReference.ts.
import { ValidationError } from '../../shared/errors.js';
import type { AppTarget, RegistryCredentials, ServiceTarget, VolumeTarget } from '../../shared/targetState.js';
import { validateTargetState } from '../../shared/validateTarget.js';
import { imageReference, requiredTags } from './imageReference.js';
import { fail } from './releaseField.js';
import { CONTAINER_NAME_MAX, CONTAINER_NAME_PATTERN, type StartupParameters } from './releaseSchema.js';
import { serviceOptions, type Ctx } from './startupParameters.js';

const NAME_RE = new RegExp(CONTAINER_NAME_PATTERN);

export interface ReleaseContainer {
  name: string;
  image: string;
  tag: string;
  required_tags: string[];
  startup_parameters: StartupParameters;
  purge_data: boolean;
  registry: number | null;
}

export interface RegistryRecord extends RegistryCredentials {
  id: number;
}

export interface ReleaseInfo {
  id: number;
  version_hash: string;
  /** containers the device stops before the deployment: removed on success, restarted on failure */
  remove_containers?: string[];
  project: { id: number; name: string; default_registry: number | null };
}

const registryKey = (id: number) => `registry-${id}`;

/** The release's app; the registries its containers pull through (their own, else the project's default). */
export function releaseApp(
  release: ReleaseInfo,
  containers: ReleaseContainer[],
  registries: ReadonlyMap<number, RegistryRecord>,
): { app: AppTarget; registries: Record<string, RegistryCredentials> } {
  const names = new Map<string, number>();
  containers.forEach((c, i) => {
    if (!NAME_RE.test(c.name) || c.name.length > CONTAINER_NAME_MAX) {
      fail(
        `/containers/${i}/name`,
        `"${c.name}" is not a valid name: up to ${CONTAINER_NAME_MAX} letters, digits, "_", "." or "-", starting with a letter or digit`,
      );
    }
    const twin = names.get(c.name);
    if (twin !== undefined) fail(`/containers/${i}/name`, `"${c.name}" is also the name of /containers/${twin}`);
    names.set(c.name, i);
  });
  const services: Record<string, ServiceTarget> = {};
  const volumes: Record<string, VolumeTarget> = {};
  const used: Record<string, RegistryCredentials> = {};
  containers.forEach((c, i) => {
    const at = `/containers/${i}`;
    const registryId = c.registry ?? release.project.default_registry;
    const registry = registryId !== null ? registries.get(registryId) : undefined;
    if (registryId !== null && !registry) {
      fail(`${at}/registry`, c.registry !== null ? `no registry ${registryId}` : `the project's default registry ${registryId} does not exist`);
    }
    const ctx: Ctx = { at: `${at}/startup_parameters`, self: c.name, names, releaseId: release.id, volumes };
    services[c.name] = {
      ...serviceOptions(c.startup_parameters, ctx),
      image: imageReference(c, registry, at),
      ...(c.required_tags.length ? { required_tags: requiredTags(c.required_tags, `${at}/required_tags`) } : {}),
      ...(registry ? { registry: registryKey(registry.id) } : {}),
      ...(c.purge_data ? { purge_data: true } : {}),
    };
    if (registry) used[registryKey(registry.id)] = { url: registry.url, username: registry.username, password: registry.password };
  });
  return {
    app: {
      name: release.project.name,
      uuid: String(release.project.id),
      release: {
        id: release.id,
        commit: release.version_hash,
        services,
        ...(Object.keys(volumes).length ? { volumes } : {}),
        ...(release.remove_containers?.length ? { remove_containers: release.remove_containers } : {}),
      },
    },
    registries: used,
  };
}

/** Where a field of the target's service comes from in the release (for errors of the whole-target check). */
const RELEASE_FIELD: Record<string, string> = {
  image: 'image',
  required_tags: 'required_tags',
  registry: 'registry',
  volumes: 'startup_parameters/binds',
  ports: 'startup_parameters/port_bindings',
  restart: 'startup_parameters/restart_policy',
  depends_on: 'startup_parameters/network_mode',
  stop_grace_period: 'startup_parameters/stop_timeout',
  purge_data: 'purge_data',
};

/**
 * releaseApp, then the check a device's whole target gets (schema and cross-references), so that
 * a release the API accepts can always become part of a valid target. Errors name the release's field.
 */
export function validateReleaseApp(
  release: ReleaseInfo,
  containers: ReleaseContainer[],
  registries: ReadonlyMap<number, RegistryRecord>,
): ReturnType<typeof releaseApp> {
  const out = releaseApp(release, containers, registries);
  try {
    validateTargetState({ apps: { [String(Math.max(1, release.project.id))]: out.app }, registries: out.registries });
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    const m = err.field.match(/^\/apps\/[^/]+\/release\/services\/([^/]+)(?:\/([^/]+)(\/.*)?)?/);
    const index = m ? containers.findIndex((c) => c.name === m[1]) : -1;
    if (index < 0) fail('/containers', err.reason);
    fail(`/containers/${index}${releaseField(containers[index]!, m![2], m![3])}`, err.reason);
  }
  return out;
}

/** The release field a target service field came from (`/startup_parameters/healthcheck/interval`). */
function releaseField(c: ReleaseContainer, key: string | undefined, rest = ''): string {
  if (!key) return '';
  if (key === 'depends_on' && c.startup_parameters.depends_on) return `/startup_parameters/depends_on${rest}`;
  const mapped = RELEASE_FIELD[key];
  // fields of the same name have the same shape below; renamed ones do not (ports expand ranges)
  return mapped ? `/${mapped}` : `/startup_parameters/${key}${rest}`;
}
