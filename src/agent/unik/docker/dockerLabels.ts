// How the docker provider keeps UniK's model in the engine: everything in labels (the engine object's
// own id and name are never UniK's), so images, instances and volumes are re-found after an agent
// restart. `io.bosun.unik=docker` marks them and no `io.balena.supervised`, so the reconciler
// leaves them alone (engine/readState.ts), and the engine scope (tests sharing one engine) applies.
import type Docker from 'dockerode';
import { withDeadline } from '../../engine/deadline.js';
import { LABEL, ownedBy, scopeLabel } from '../../engine/labels.js';
import type { InstanceState, UnikImage, UnikInstance, UnikVolume } from '../provider.js';
import { isoTime } from '../../../shared/isoTime.js';

export const PROVIDER = 'docker';

export const UNIK = {
  kind: LABEL.unik,
  id: 'io.bosun.unik.id',
  name: 'io.bosun.unik.name',
  created: 'io.bosun.unik.created',
  compiler: 'io.bosun.unik.compiler',
  /** image: the declared mount points (JSON array); instance: mount point → volume id (JSON object) */
  mounts: 'io.bosun.unik.mounts',
  args: 'io.bosun.unik.args',
  imageId: 'io.bosun.unik.image-id',
  sizeMb: 'io.bosun.unik.size-mb',
} as const;

/** The helper image volumes are filled through: no UniK image, never listed. */
export const HELPER = 'helper';

export const MiB = 1024 * 1024;

export interface Scoped {
  scope: string | undefined;
}

export const unikFilter = (scope: string | undefined) => ({ label: [`${UNIK.kind}=${PROVIDER}`, ...(scope ? [`${LABEL.scope}=${scope}`] : [])] });

export const mine = (labels: Record<string, string> | undefined, scope: string | undefined) => labels?.[UNIK.kind] === PROVIDER && ownedBy(labels, scope);

/** The engine images that are UniK images (the helper image has no UniK id). */
export async function unikImages(docker: Docker, scope: string | undefined): Promise<Docker.ImageInfo[]> {
  const list = await withDeadline((d) => docker.listImages({ filters: unikFilter(scope), ...d }));
  return list.filter((i) => mine(i.Labels, scope) && i.Labels?.[UNIK.id]);
}

/** The containers that are UniK instances. */
export async function unikContainers(docker: Docker, scope: string | undefined): Promise<Docker.ContainerInfo[]> {
  const list = await withDeadline((d) => docker.listContainers({ all: true, filters: unikFilter(scope), ...d }));
  return list.filter((c) => mine(c.Labels, scope) && c.Labels?.[UNIK.id]);
}

export function objectLabels(scope: string | undefined, id: string, name: string, created: string, extra: Record<string, string> = {}): Record<string, string> {
  return { [UNIK.kind]: PROVIDER, [UNIK.id]: id, [UNIK.name]: name, [UNIK.created]: created, ...scopeLabel(scope), ...extra };
}

export const imageTag = (id: string) => `bosun-unik/${id}:latest`;
export const volumeEngineName = (id: string) => `bosun-unik-${id}`;

function parseJson<T>(text: string | undefined, fallback: T): T {
  try {
    return text ? (JSON.parse(text) as T) : fallback;
  } catch {
    return fallback;
  }
}

const iso = (label: string | undefined, unixSeconds: number) => label ?? isoTime(unixSeconds * 1000);

export function toImage(i: Docker.ImageInfo): UnikImage {
  const l = i.Labels ?? {};
  const mounts = parseJson<string[]>(l[UNIK.mounts], []);
  const sizeMb = Math.max(1, Math.ceil(i.Size / MiB));
  return {
    Id: l[UNIK.id]!,
    Name: l[UNIK.name]!,
    SizeMb: sizeMb,
    Infrastructure: PROVIDER,
    Created: iso(l[UNIK.created], i.Created),
    StageSpec: { ImageFormat: 'docker' },
    RunSpec: {
      DeviceMappings: mounts.map((m, n) => ({ MountPoint: m, DeviceName: `/dev/sd${String.fromCharCode(98 + n)}` })),
      DefaultInstanceMemory: 512,
      MinInstanceDiskMB: sizeMb,
      Compiler: l[UNIK.compiler] ?? '',
    },
  };
}

export const imageArgs = (i: Docker.ImageInfo) => parseJson<string[]>(i.Labels?.[UNIK.args], []);

const STATES: Record<string, InstanceState> = {
  running: 'running',
  created: 'stopped',
  exited: 'stopped',
  paused: 'paused',
  restarting: 'pending',
  removing: 'terminated',
  dead: 'error',
};

/** `creating`: the provider is still making or starting this container (UniK's `pending`; the engine says `created`). */
export function toInstance(c: Docker.ContainerInfo, creating = false): UnikInstance {
  const l = c.Labels ?? {};
  const ip = Object.values(c.NetworkSettings?.Networks ?? {}).find((n) => n.IPAddress)?.IPAddress ?? '';
  return {
    Id: l[UNIK.id]!,
    Name: l[UNIK.name]!,
    State: creating ? 'pending' : (STATES[c.State] ?? 'unknown'),
    IpAddress: c.State === 'running' ? ip : '',
    ImageId: l[UNIK.imageId] ?? '',
    Infrastructure: PROVIDER,
    Created: iso(l[UNIK.created], c.Created),
  };
}

/** mount point → volume id */
export const instanceMounts = (c: Docker.ContainerInfo | { Labels?: Record<string, string> }) => parseJson<Record<string, string>>(c.Labels?.[UNIK.mounts], {});

export function toVolume(v: Docker.VolumeInspectInfo, attachment: string): UnikVolume {
  const l = v.Labels ?? {};
  const created = (v as { CreatedAt?: string }).CreatedAt;
  return {
    Id: l[UNIK.id]!,
    Name: l[UNIK.name]!,
    SizeMb: Number(l[UNIK.sizeMb] ?? 1),
    Attachment: attachment,
    Infrastructure: PROVIDER,
    Created: l[UNIK.created] ?? (created ? isoTime(Date.parse(created)) : ''),
  };
}
