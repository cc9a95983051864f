// The UniK API's model (UniK's Go names, as its CLI and client decode them) and the interface each
// provider implements: `docker` (images are engine images, instances containers, volumes engine
// volumes) and `qemu` (a micro-VM per instance). The routes (unik/routes.ts) resolve names, ids and
// unique prefixes across providers and map UnikError kinds to UniK's status codes.

export const INSTANCE_STATES = ['running', 'stopped', 'pending', 'unknown', 'terminated', 'error', 'paused', 'suspended'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

export interface DeviceMapping {
  MountPoint: string;
  DeviceName: string;
}

export interface UnikImage {
  Id: string;
  Name: string;
  /** whole MiB, rounded up */
  SizeMb: number;
  /** the provider's name */
  Infrastructure: string;
  /** RFC 3339 */
  Created: string;
  StageSpec: { ImageFormat: string };
  RunSpec: {
    DeviceMappings: DeviceMapping[];
    DefaultInstanceMemory: number;
    MinInstanceDiskMB: number;
    /** `base-language-provider` */
    Compiler: string;
  };
}

export interface UnikInstance {
  Id: string;
  Name: string;
  State: InstanceState;
  IpAddress: string;
  ImageId: string;
  Infrastructure: string;
  Created: string;
}

export interface UnikVolume {
  Id: string;
  Name: string;
  SizeMb: number;
  /** the instance id it is attached to, '' when detached */
  Attachment: string;
  Infrastructure: string;
  Created: string;
}

/** A compiler of one provider: its name is `${base}-${lang}-${provider}` (exactly two dashes). */
export interface UnikCompiler {
  base: string;
  lang: string;
  description: string;
}

export interface BuildRequest {
  name: string;
  compiler: UnikCompiler;
  /** the upload, already extracted safely into a folder the provider may read and then delete */
  sourceDir: string;
  /** arguments passed to the app at run time */
  args: string[];
  /** mount points the image declares; every run must map each of them to a volume */
  mounts: string[];
  signal: AbortSignal;
}

export interface RunRequest {
  name: string;
  image: UnikImage;
  /** mount point → volume, exactly the image's mount points */
  mounts: ReadonlyMap<string, UnikVolume>;
  env: Record<string, string>;
  /** 0: the image's default */
  memoryMb: number;
  debugMode: boolean;
}

export interface VolumeRequest {
  name: string;
  /** 0: just big enough for the data (at least 1) */
  sizeMb: number;
  /** a folder (extracted safely) whose contents fill the volume; absent: an empty volume */
  dataDir?: string;
  /** UniK's raw data (raw=true): the uploaded bytes, read by the provider, never moved or changed (no_cleanup may keep them) */
  rawFile?: string;
}

export interface UnikProvider {
  readonly name: string;
  readonly compilers: readonly UnikCompiler[];

  listImages(): Promise<UnikImage[]>;
  buildImage(request: BuildRequest): Promise<UnikImage>;
  /** refuses (conflict) when an instance uses the image, unless force (then those instances go first) */
  deleteImage(image: UnikImage, force: boolean): Promise<void>;

  listInstances(): Promise<UnikInstance[]>;
  runInstance(request: RunRequest): Promise<UnikInstance>;
  startInstance(instance: UnikInstance): Promise<void>;
  /** a graceful stop first, then a hard one */
  stopInstance(instance: UnikInstance): Promise<void>;
  /** refuses (conflict) a running instance unless force */
  deleteInstance(instance: UnikInstance, force: boolean): Promise<void>;
  /** everything the instance printed so far */
  logs(instance: UnikInstance): Promise<string>;
  /** what it prints from now on, until the signal aborts */
  followLogs(instance: UnikInstance, signal: AbortSignal): AsyncIterable<Buffer>;

  listVolumes(): Promise<UnikVolume[]>;
  createVolume(request: VolumeRequest): Promise<UnikVolume>;
  /** refuses (conflict) an attached volume unless force */
  deleteVolume(volume: UnikVolume, force: boolean): Promise<void>;
  attachVolume(volume: UnikVolume, instance: UnikInstance, mountPoint: string): Promise<void>;
  detachVolume(volume: UnikVolume): Promise<void>;

  /** The hub (an OCI registry): optional, a provider without it answers 400 to push, pull and remote-delete. */
  pushImage?(image: UnikImage, hub: HubConfig): Promise<void>;
  /** the image of that name from the hub; the routes have refused (or removed) a local one of that name first */
  pullImage?(name: string, hub: HubConfig): Promise<UnikImage>;
  remoteDeleteImage?(name: string, hub: HubConfig): Promise<void>;
}

/** UniK's hub: `{URL, Username, Password}` (also `url/user/pass`), here an OCI registry (`host[:port]`, a scheme allowed). */
export interface HubConfig {
  url: string;
  username: string;
  password: string;
}

export type UnikErrorKind = 'bad-request' | 'not-found' | 'conflict' | 'insufficient-storage' | 'failed';

/** A provider's or the API's refusal; the routes answer it as raw text with the kind's status code. */
export class UnikError extends Error {
  constructor(
    readonly kind: UnikErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'UnikError';
  }
}
