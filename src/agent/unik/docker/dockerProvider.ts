// The `docker` UniK provider: images are engine images, instances containers, volumes engine volumes,
// all found again through their labels (dockerLabels.ts). Attaching or detaching a volume recreates
// the container with the same configuration (a container's mounts are fixed at creation); the
// instance keeps its id, which lives in a label.
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { withDeadline } from '../../engine/deadline.js';
import type { EventLog } from '../../eventLog.js';
import { randomHex } from '../../randomHex.js';
import { readLogs } from '../../engine/containerLogs.js';
import {
  UnikError,
  type BuildRequest,
  type HubConfig,
  type RunRequest,
  type UnikImage,
  type UnikInstance,
  type UnikProvider,
  type UnikVolume,
  type VolumeRequest,
} from '../provider.js';
import { buildImage } from './dockerBuild.js';
import { pullImage, pushImage, remoteDeleteImage } from './dockerHub.js';
import {
  imageArgs,
  instanceMounts,
  MiB,
  objectLabels,
  PROVIDER,
  toImage,
  toInstance,
  UNIK,
  unikContainers,
  unikImages,
  volumeEngineName,
} from './dockerLabels.js';
import { createVolume, removeVolume, volumesWithAttachments } from './dockerVolumes.js';
import { isoTime } from '../../../shared/isoTime.js';

export interface DockerProviderOptions {
  docker: Docker;
  /** the agent's engine scope (tests sharing one engine) */
  scope?: string;
  log: EventLog;
}

/** How many lines of an instance's output a plain logs request returns (the newest). */
const LOG_TAIL_LINES = 10_000;
const STOP_TIMEOUT_S = 10;

export function createDockerProvider(o: DockerProviderOptions): UnikProvider {
  return new DockerProvider(o.docker, o.scope, o.log);
}

class DockerProvider implements UnikProvider {
  readonly name = PROVIDER;
  readonly compilers = [
    { base: 'docker', lang: 'dockerfile', description: 'Builds the Dockerfile at the top of the tar with the engine; instances are containers.' },
    { base: 'static', lang: 'binary', description: 'The tar holds one statically linked executable; the image is FROM scratch with it as its entrypoint.' },
  ];

  /** UniK ids of the instances whose container is being created, started or recreated: `pending` meanwhile */
  private readonly creating = new Set<string>();

  constructor(
    private readonly docker: Docker,
    private readonly scope: string | undefined,
    private readonly log: EventLog,
  ) {}

  async listImages(): Promise<UnikImage[]> {
    return (await this.engineImages()).map(toImage);
  }

  async buildImage(request: BuildRequest): Promise<UnikImage> {
    const id = await randomHex(16);
    await buildImage(this.docker, this.scope, id, isoTime(), request);
    this.log.info(`UniK: built image ${request.name} (${PROVIDER})`);
    return this.image(id);
  }

  async deleteImage(image: UnikImage, force: boolean): Promise<void> {
    const users = (await this.listInstances()).filter((i) => i.ImageId === image.Id);
    if (users.length && !force) throw new UnikError('conflict', `image ${image.Name} is used by instance(s) ${users.map((i) => i.Name).join(', ')}`);
    for (const instance of users) await this.deleteInstance(instance, true);
    const engine = (await this.engineImages()).find((i) => i.Labels?.[UNIK.id] === image.Id);
    if (engine) await withDeadline((d) => this.docker.getImage(engine.Id).remove({ force: true, ...d }));
  }

  async listInstances(): Promise<UnikInstance[]> {
    const byId = new Map<string, UnikInstance>();
    // while a recreate runs, the old container and its replacement share the UniK id: one instance
    for (const c of await this.containers()) byId.set(c.Labels[UNIK.id]!, toInstance(c, this.creating.has(c.Labels[UNIK.id]!)));
    return [...byId.values()];
  }

  async runInstance(request: RunRequest): Promise<UnikInstance> {
    const engine = (await this.engineImages()).find((i) => i.Labels?.[UNIK.id] === request.image.Id);
    if (!engine) throw new UnikError('not-found', `image ${request.image.Name} is gone`);
    const id = await randomHex(16);
    this.creating.add(id);
    try {
      await this.createAndStart(id, engine, request);
    } finally {
      this.creating.delete(id);
    }
    this.log.info(`UniK: instance ${request.name} runs image ${request.image.Name}`);
    return this.instance(id);
  }

  private async createAndStart(id: string, engine: Docker.ImageInfo, request: RunRequest): Promise<void> {
    const mounts = Object.fromEntries([...request.mounts].map(([point, volume]) => [point, volume.Id]));
    const args = imageArgs(engine);
    const container = await withDeadline((d) =>
      this.docker.createContainer({
        Image: engine.Id,
        ...(args.length ? { Cmd: args } : {}),
        Env: Object.entries(request.env).map(([k, v]) => `${k}=${v}`),
        Labels: objectLabels(this.scope, id, request.name, isoTime(), {
          [UNIK.imageId]: request.image.Id,
          [UNIK.mounts]: JSON.stringify(mounts),
        }),
        // an init as PID 1 passes the stop signal on: a static app as PID 1 gets no default signal
        // handlers, and would take the whole grace period to stop
        HostConfig: { Init: true, Binds: binds(mounts), ...(request.memoryMb > 0 ? { Memory: request.memoryMb * MiB } : {}) },
        ...d,
      }),
    );
    try {
      await withDeadline((d) => container.start({ ...d }));
    } catch (err) {
      await container.remove({ force: true }).catch(() => undefined);
      throw new UnikError('failed', `instance ${request.name} could not start: ${(err as Error).message}`);
    }
  }

  async startInstance(instance: UnikInstance): Promise<void> {
    const c = await this.container(instance.Id);
    await withDeadline((d) => this.docker.getContainer(c.Id).start({ ...d })).catch(ignoreNotModified);
  }

  async stopInstance(instance: UnikInstance): Promise<void> {
    const c = await this.container(instance.Id);
    await withDeadline((d) => this.docker.getContainer(c.Id).stop({ t: STOP_TIMEOUT_S, ...d })).catch(ignoreNotModified);
  }

  async deleteInstance(instance: UnikInstance, force: boolean): Promise<void> {
    const c = await this.container(instance.Id);
    if (c.State === 'running' && !force) throw new UnikError('conflict', `instance ${instance.Name} is running (stop it, or delete with force)`);
    await withDeadline((d) => this.docker.getContainer(c.Id).remove({ force: true, ...d }));
  }

  async logs(instance: UnikInstance): Promise<string> {
    const c = await this.container(instance.Id);
    const chunks: Buffer[] = [];
    await readLogs(this.docker, c.Id, { tail: LOG_TAIL_LINES }, (chunk) => chunks.push(chunk));
    return Buffer.concat(chunks).toString('utf8');
  }

  async *followLogs(instance: UnikInstance, signal: AbortSignal): AsyncIterable<Buffer> {
    const c = await this.container(instance.Id);
    const raw = (await this.docker.getContainer(c.Id).logs({
      follow: true,
      stdout: true,
      stderr: true,
      since: Date.now() / 1000,
      abortSignal: signal,
    } as Docker.ContainerLogsOptions & { follow: true })) as NodeJS.ReadableStream & { destroy(): void };
    const out = new PassThrough();
    this.docker.modem.demuxStream(raw, out, out);
    raw.on('end', () => out.end());
    raw.on('error', () => out.end());
    const stop = () => {
      raw.destroy();
      out.end();
    };
    signal.addEventListener('abort', stop, { once: true });
    try {
      for await (const chunk of out) yield chunk as Buffer;
    } finally {
      signal.removeEventListener('abort', stop);
      raw.destroy();
    }
  }

  async listVolumes(): Promise<UnikVolume[]> {
    return volumesWithAttachments(this.docker, this.scope, await this.containers());
  }

  createVolume(request: VolumeRequest): Promise<UnikVolume> {
    return createVolume(this.docker, this.scope, request);
  }

  async deleteVolume(volume: UnikVolume, force: boolean): Promise<void> {
    if (volume.Attachment && !force)
      throw new UnikError('conflict', `volume ${volume.Name} is attached to instance ${volume.Attachment} (detach it, or delete with force)`);
    if (volume.Attachment) await this.detachVolume(volume);
    await removeVolume(this.docker, volume.Id);
  }

  async attachVolume(volume: UnikVolume, instance: UnikInstance, mountPoint: string): Promise<void> {
    const c = await this.container(instance.Id);
    const mounts = instanceMounts(c);
    if (mounts[mountPoint]) throw new UnikError('conflict', `instance ${instance.Name} already has a volume at ${mountPoint}`);
    await this.recreate(c, { ...mounts, [mountPoint]: volume.Id });
  }

  async detachVolume(volume: UnikVolume): Promise<void> {
    const c = (await this.containers()).find((x) => Object.values(instanceMounts(x)).includes(volume.Id));
    if (!c) throw new UnikError('bad-request', `volume ${volume.Name} is not attached`);
    const mounts = Object.fromEntries(Object.entries(instanceMounts(c)).filter(([, v]) => v !== volume.Id));
    await this.recreate(c, mounts);
  }

  pushImage(image: UnikImage, hub: HubConfig): Promise<void> {
    return pushImage(this.docker, image, hub);
  }

  async pullImage(name: string, hub: HubConfig): Promise<UnikImage> {
    const id = await pullImage(this.docker, name, hub);
    return this.image(id);
  }

  remoteDeleteImage(name: string, hub: HubConfig): Promise<void> {
    return remoteDeleteImage(name, hub);
  }

  /**
   * A container's mounts are fixed at creation: a new one with the same configuration and these
   * mounts replaces it (created first, so a refusal leaves the old one as it was), started if the
   * old one ran.
   */
  private async recreate(old: Docker.ContainerInfo, mounts: Record<string, string>): Promise<void> {
    const id = old.Labels[UNIK.id]!;
    this.creating.add(id);
    try {
      await this.replace(old, mounts);
    } finally {
      this.creating.delete(id);
    }
  }

  private async replace(old: Docker.ContainerInfo, mounts: Record<string, string>): Promise<void> {
    const info = await withDeadline((d) => this.docker.getContainer(old.Id).inspect({ ...d }));
    const created = await withDeadline((d) =>
      this.docker.createContainer({
        Image: info.Image,
        Cmd: info.Config.Cmd ?? undefined,
        Env: info.Config.Env,
        Labels: { ...info.Config.Labels, [UNIK.mounts]: JSON.stringify(mounts) },
        HostConfig: { Init: true, Binds: binds(mounts), ...(info.HostConfig.Memory ? { Memory: info.HostConfig.Memory } : {}) },
        ...d,
      }),
    );
    await withDeadline((d) => this.docker.getContainer(old.Id).remove({ force: true, ...d }));
    if (info.State.Running) await withDeadline((d) => created.start({ ...d }));
  }

  private engineImages(): Promise<Docker.ImageInfo[]> {
    return unikImages(this.docker, this.scope);
  }

  private containers(): Promise<Docker.ContainerInfo[]> {
    return unikContainers(this.docker, this.scope);
  }

  private async container(id: string): Promise<Docker.ContainerInfo> {
    const c = (await this.containers()).find((x) => x.Labels[UNIK.id] === id);
    if (!c) throw new UnikError('not-found', `instance ${id} is gone`);
    return c;
  }

  private async image(id: string): Promise<UnikImage> {
    const image = (await this.listImages()).find((i) => i.Id === id);
    if (!image) throw new UnikError('failed', `image ${id} not found after it was made`);
    return image;
  }

  private async instance(id: string): Promise<UnikInstance> {
    const instance = (await this.listInstances()).find((i) => i.Id === id);
    if (!instance) throw new UnikError('failed', `instance ${id} vanished after it was made`);
    return instance;
  }
}

const binds = (mounts: Record<string, string>) => Object.entries(mounts).map(([point, volumeId]) => `${volumeEngineName(volumeId)}:${point}`);

/** The engine answers 304 to starting a running container or stopping a stopped one. */
function ignoreNotModified(err: { statusCode?: number }): void {
  if (err.statusCode !== 304) throw err;
}
