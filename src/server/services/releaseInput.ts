// What a release request gives (a container list or a compose file, defaults left out), turned into
// the containers that are stored, with errors named by the request's own fields.
import { ValidationError } from '../../shared/errors.js';
import { composeContainers, composePath } from '../releases/compose.js';
import type { ReleaseContainer } from '../targets/releaseTarget.js';

/** A container as a caller gives it: defaults for what it leaves out. */
export type ContainerInput = Pick<ReleaseContainer, 'name' | 'image'> &
  Partial<Omit<ReleaseContainer, 'name' | 'image' | 'registry'>> & { registry?: number | null };
export interface ReleaseInput {
  version: string;
  /** default: the project's devices */
  devices?: string[];
  /** the containers, or `compose` */
  containers?: ContainerInput[];
  /** a docker-compose.yml, converted into the containers (releases/compose.ts) */
  compose?: string;
  /** the contents of the env_file files the compose file names, by the path it names */
  env_files?: Record<string, string>;
  remove_containers?: string[];
  /** not stored: says that an empty `containers` is meant */
  allow_empty?: boolean;
}
export type ReleasePatch = Partial<ReleaseInput>;

/** A release as stored, defaults applied. */
export interface StoredInput {
  version: string;
  devices: string[];
  containers: ReleaseContainer[];
  remove_containers: string[];
}

export const containerOf = (c: ContainerInput): ReleaseContainer => ({
  name: c.name,
  image: c.image,
  tag: c.tag ?? 'latest',
  required_tags: c.required_tags ?? [],
  startup_parameters: c.startup_parameters ?? {},
  purge_data: c.purge_data ?? false,
  registry: c.registry ?? null,
});

/** The containers a PUT or POST must give. */
export function requiredContainers(body: ReleaseInput): ContainerInput[] {
  return containersIn(body) ?? fail('/containers', 'required: give containers or compose');
}

/** The containers a request gives, from its list or its compose file (never both); empty ones refused unless meant. */
export function containersIn(body: ReleasePatch): ContainerInput[] | undefined {
  if (body.compose !== undefined && body.containers !== undefined) fail('/compose', 'give containers or compose, not both');
  if (body.env_files !== undefined && body.compose === undefined) fail('/env_files', 'env_files go with compose');
  const containers = body.compose !== undefined ? composeContainers(body.compose, body.env_files) : body.containers;
  if (body.compose !== undefined && containers?.length === 0 && body.allow_empty !== true) {
    throw new ValidationError(
      'services',
      'no services: this release would stop and remove every service of the project on its devices; send "allow_empty": true if that is meant',
      'compose file',
    );
  }
  refuseEmpty(containers, body.allow_empty);
  return containers;
}

/** The release's checks, their errors named by the compose file's paths when it came as one. */
export async function composePaths(body: ReleasePatch, check: () => Promise<void>): Promise<void> {
  try {
    await check();
  } catch (err) {
    if (body.compose === undefined || !(err instanceof ValidationError) || !err.field.startsWith('/containers')) throw err;
    throw new ValidationError(composePath(err.field, composeContainers(body.compose, body.env_files)), err.reason, 'compose file');
  }
}

function fail(field: string, reason: string): never {
  throw new ValidationError(field, reason, 'release');
}

/** A release without containers stops and removes every service of the project on its devices: only when the request says it means that. */
function refuseEmpty(containers: unknown[] | undefined, allowEmpty: boolean | undefined): void {
  if (containers?.length === 0 && allowEmpty !== true) {
    throw new ValidationError(
      '/containers',
      'no containers: this release would stop and remove every service of the project on its devices; send "allow_empty": true if that is meant',
      'release',
    );
  }
}
