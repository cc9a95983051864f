// Reads the actual state from the engine: 4 list calls, no per-container inspect, because
// everything the planner needs travels in labels; only a handover asks when a container started.
import type Docker from 'dockerode';
import { withDeadline } from './deadline.js';
import { LABEL, SUPERVISED_FILTER, ownedBy } from './labels.js';
import type { ContainerState, CurrentContainer, CurrentNetwork, CurrentState, CurrentVolume, ForeignContainer } from '../reconciler/types.js';

export async function readCurrentState(docker: Docker, scope: string | undefined): Promise<CurrentState> {
  const [containers, images, networks, volumes] = await withDeadline((d) =>
    Promise.all([
      docker.listContainers({ all: true, ...d }),
      docker.listImages({ ...d }),
      docker.listNetworks({ filters: SUPERVISED_FILTER, ...d }),
      docker.listVolumes({ filters: SUPERVISED_FILTER, ...d }),
    ]),
  );
  const owned: CurrentContainer[] = [];
  const others: ForeignContainer[] = [];
  const imageIdsInUse = new Set<string>();
  for (const c of containers) {
    imageIdsInUse.add(c.ImageID);
    const labels = c.Labels ?? {};
    const supervised = labels[LABEL.supervised] === 'true' && labels[LABEL.appId] && labels[LABEL.serviceName];
    if (!supervised) {
      // UniK instances are no app's "initial containers" (remove_containers names them by name)
      if (labels[LABEL.unik]) continue;
      others.push({ id: c.Id, name: (c.Names[0] ?? '').replace(/^\//, ''), state: c.State as ContainerState });
      continue;
    }
    if (!ownedBy(labels, scope)) continue;
    owned.push({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      appId: Number(labels[LABEL.appId]),
      serviceName: labels[LABEL.serviceName]!,
      releaseId: Number(labels[LABEL.releaseId] ?? -1),
      commit: labels[LABEL.commit] ?? '',
      configHash: labels[LABEL.configHash] ?? '',
      configLabel: labels[LABEL.config] ?? '',
      dependsOn: labels[LABEL.dependsOn] ? labels[LABEL.dependsOn].split(',') : [],
      imageId: c.ImageID,
      state: c.State as ContainerState,
      createdAt: c.Created * 1000,
      networks: Object.keys(c.NetworkSettings?.Networks ?? {}),
      networkMode: c.HostConfig?.NetworkMode ?? '',
    });
  }
  return {
    containers: owned,
    others,
    images: images.map((i) => ({ id: i.Id, repoTags: i.RepoTags ?? [], repoDigests: i.RepoDigests ?? [] })),
    networks: networks
      .filter((n) => n.Labels?.[LABEL.appId] && ownedBy(n.Labels, scope))
      .map(
        (n): CurrentNetwork => ({
          id: n.Id,
          name: n.Name,
          appId: Number(n.Labels![LABEL.appId]),
          configHash: n.Labels![LABEL.configHash] ?? '',
        }),
      ),
    volumes: (volumes.Volumes ?? [])
      .filter((v) => v.Labels?.[LABEL.appId] && ownedBy(v.Labels, scope))
      .map((v): CurrentVolume => ({ name: v.Name, appId: Number(v.Labels[LABEL.appId]) })),
    imageIdsInUse,
  };
}

/**
 * When a container last started running (ms), from the engine's `State.StartedAt`: RFC 3339 with
 * nanoseconds, rounded up so that a deadline counted from it is never early. Undefined when it
 * never ran (the engine's zero time) or cannot be read.
 */
export function startedAtMs(startedAt: string | undefined): number | undefined {
  const m = startedAt?.match(/^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/);
  if (!m) return undefined;
  const seconds = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(seconds) || seconds <= 0) return undefined;
  const fraction = m[2] ?? '';
  const ms = Number(fraction.slice(0, 3).padEnd(3, '0'));
  return seconds + ms + (/[1-9]/.test(fraction.slice(3)) ? 1 : 0);
}

/** `startedAtMs` of one container; undefined when it is gone or the engine does not say. */
export async function readStartedAt(docker: Docker, id: string): Promise<number | undefined> {
  try {
    const info = await withDeadline((d) => docker.getContainer(id).inspect({ ...d }));
    return startedAtMs(info.State.StartedAt);
  } catch {
    return undefined;
  }
}
