// The UniK API's place in the agent: the port is bound at start, the providers and the API (fastify,
// busboy, tar) loaded on the first request, as the device API is. The providers are also what the
// state report lists (cloud mode): loaded then, without the API, once there is anything to list
// (the report asks the engine and the qemu records folder once whether an earlier run left any, so
// an agent whose UniK API was never used loads no provider: BENCHMARKS.md §3).
import path from 'node:path';
import type Docker from 'dockerode';
import fsp from '../../shared/fsAsync.js';
import type { ApiServer } from '../api/apiServer.js';
import { lazyApi, startApiServer } from '../api/apiServer.js';
import type { Agent } from '../agent.js';
import type { EventLog } from '../eventLog.js';
import type { UnikReport } from '../../shared/deviceLink.js';
import { unikContainers, unikImages } from './docker/dockerLabels.js';
import type { UnikProvider } from './provider.js';
import { qemuStoreRoot, Store } from './qemu/store.js';

export interface UnikSettings {
  docker: Docker;
  scope: string | undefined;
  /** the agent's data folder; the API keeps its files in `unik/` there */
  dataDir: string;
  log: EventLog;
  onChange: () => void;
}

export const DEFAULT_UNIK_PORT = 3000;
const UPLOAD_LIMIT_BYTES = 1024 * 1024 * 1024;
/** what no_cleanup keeps, all images and volumes together */
const KEPT_LIMIT_BYTES = 2 * 1024 * 1024 * 1024;
/** MAX_REPORT_UNIK of shared/deviceLink.ts (a value import there would load TypeBox into the agent) */
const REPORT_LIMIT = 500;

export class Unik {
  private providers: Promise<UnikProvider[]> | undefined;
  /** asked once: a UniK object appears later only through this API, which loads the providers */
  private leftByEarlierRun: Promise<boolean> | undefined;
  private server: ApiServer | undefined;

  constructor(private readonly s: UnikSettings) {}

  /** Binds the port; a port in use leaves the API off (the agent runs on) with an error naming the option. */
  async listen(agent: Agent, port: number, address: string): Promise<void> {
    const load = lazyApi(async () => this.api(address));
    try {
      this.server = await startApiServer(agent, 'UniK API', load, port, address);
      this.s.log.info(`UniK API listening on ${address}:${this.server.port}`);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const why = e.code === 'EADDRINUSE' ? `port ${port} is in use` : e.message;
      this.s.log.error(`UniK API not started on ${address}:${port}: ${why}; choose another port with --unik-port <port> (or --unik-port off)`);
    }
  }

  get port(): number | undefined {
    return this.server?.port;
  }

  async close(): Promise<void> {
    await this.server?.close();
  }

  /** What the operator sees of UniK in the device's state report. */
  async report(): Promise<UnikReport> {
    this.leftByEarlierRun ??= unikInUse(this.s);
    this.leftByEarlierRun.catch(() => (this.leftByEarlierRun = undefined));
    if (!this.providers && !(await this.leftByEarlierRun)) return { images: [], instances: [] };
    const providers = await this.loadProviders();
    const [images, instances] = await Promise.all([Promise.all(providers.map((p) => p.listImages())), Promise.all(providers.map((p) => p.listInstances()))]);
    return {
      images: images
        .flat()
        .slice(0, REPORT_LIMIT)
        .map((i) => ({ id: i.Id, name: i.Name, provider: i.Infrastructure, compiler: i.RunSpec.Compiler, size_mb: i.SizeMb, created: i.Created })),
      instances: instances
        .flat()
        .slice(0, REPORT_LIMIT)
        .map((i) => ({ id: i.Id, name: i.Name, provider: i.Infrastructure, state: i.State, image_id: i.ImageId, created: i.Created })),
    };
  }

  private async api(address: string) {
    const [{ buildUnikApi }, providers] = await Promise.all([import('./unikApi.js'), this.loadProviders()]);
    const workDir = path.join(this.s.dataDir, 'unik', 'work');
    // uploads and sources an earlier run left (it stopped mid-build) are of no use; the folder
    // itself stays (it may be a mount point)
    await fsp.mkdir(workDir, { recursive: true, mode: 0o700 });
    for (const entry of await fsp.readdir(workDir)) await fsp.rm(path.join(workDir, entry), { recursive: true, force: true });
    const { DEFAULT_EXTRACT_LIMITS } = await import('./safeExtract.js');
    return buildUnikApi(
      {
        providers,
        workDir,
        keptDir: path.join(this.s.dataDir, 'unik', 'kept'),
        keptLimitBytes: KEPT_LIMIT_BYTES,
        log: this.s.log,
        uploadLimitBytes: UPLOAD_LIMIT_BYTES,
        extractLimits: DEFAULT_EXTRACT_LIMITS,
        onChange: this.s.onChange,
      },
      address,
    );
  }

  private loadProviders(): Promise<UnikProvider[]> {
    this.providers ??= loadProviders(this.s);
    this.providers.catch(() => (this.providers = undefined));
    return this.providers;
  }
}

/** Whether any provider has an image or an instance, asked without loading one. */
async function unikInUse(s: UnikSettings): Promise<boolean> {
  const qemu = new Store(qemuStoreRoot(s.dataDir));
  const [images, containers, qemuImages, qemuInstances] = await Promise.all([
    unikImages(s.docker, s.scope),
    unikContainers(s.docker, s.scope),
    qemu.any('images'),
    qemu.any('instances'),
  ]);
  return images.length > 0 || containers.length > 0 || qemuImages || qemuInstances;
}

/** Each provider, or undefined where it cannot run on this machine. Adding one is one line here. */
async function loadProviders(s: UnikSettings): Promise<UnikProvider[]> {
  const made = await Promise.all([
    import('./docker/dockerProvider.js').then((m) => m.createDockerProvider({ docker: s.docker, scope: s.scope, log: s.log })),
    import('./qemu/qemuProvider.js').then((m) => m.createQemuProvider({ dataDir: s.dataDir, cacheDir: path.join(s.dataDir, 'unik', 'cache'), log: s.log })),
  ]);
  return made.filter((p): p is UnikProvider => p !== undefined);
}
