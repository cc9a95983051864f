// Pulls images through the engine: registry auth, per-service progress over all layers,
// retry with exponential backoff, and a free-space check before and during the pull.
// The engine tags an image only once the pull completed, so a half pull is never "present".
import fs from '../../shared/fsAsync.js';
import type Docker from 'dockerode';
import type { RegistryCredentials } from '../../shared/targetState.js';
import { BosunError } from '../../shared/errors.js';

export class DiskSpaceError extends BosunError {
  override name = 'DiskSpaceError';
}

export interface PullOwner {
  appId: number;
  serviceName: string;
}

interface LayerProgress {
  current: number;
  total: number;
}

interface Pull {
  owner: PullOwner;
  layers: Map<string, LayerProgress>;
  promise: Promise<void>;
}

export interface PullFailure {
  attempts: number;
  retryAt: number;
  error: string;
}

export interface ImagePullerOptions {
  /** Keep at least this much free on the engine's disk; default 100 MiB. */
  minFreeBytes?: number;
  /** The engine's data root (docker info DockerRootDir), if this process can see it. */
  dataRoot?: string;
  baseBackoffMs?: number;
  /** abort a pull that reports no progress for this long; default 5 min */
  stallTimeoutMs?: number;
  maxBackoffMs?: number;
  onSettled?: (ref: string, error?: Error) => void;
}

export class ImagePuller {
  private readonly inFlight = new Map<string, Pull>();
  private readonly failures = new Map<string, PullFailure>();
  private readonly minFree: number;
  private readonly baseBackoff: number;
  private readonly maxBackoff: number;

  constructor(
    private readonly docker: Docker,
    private readonly opts: ImagePullerOptions = {},
  ) {
    this.minFree = opts.minFreeBytes ?? 100 * 1024 * 1024;
    this.baseBackoff = opts.baseBackoffMs ?? 1000;
    this.maxBackoff = opts.maxBackoffMs ?? 5 * 60_000;
  }

  downloading(): Set<string> {
    return new Set(this.inFlight.keys());
  }

  backoff(): Map<string, number> {
    // A failure long past its retry time belongs to an image no longer wanted: forget it.
    const stale = Date.now() - this.maxBackoff - 60_000;
    for (const [ref, f] of this.failures) if (f.retryAt < stale) this.failures.delete(ref);
    return new Map([...this.failures].map(([ref, f]) => [ref, f.retryAt]));
  }

  failure(ref: string): PullFailure | undefined {
    return this.failures.get(ref);
  }

  /** Percentage (0–100) over all layers of the service's pulls in flight, or null when none. */
  progress(appId: number, serviceName: string): number | null {
    let current = 0;
    let total = 0;
    let any = false;
    for (const pull of this.inFlight.values()) {
      if (pull.owner.appId !== appId || pull.owner.serviceName !== serviceName) continue;
      any = true;
      for (const l of pull.layers.values()) {
        current += l.current;
        total += l.total;
      }
    }
    if (!any) return null;
    return total > 0 ? Math.min(100, Math.floor((100 * current) / total)) : 0;
  }

  /** Starts a pull (or joins the one in flight). Resolves when the image is present. */
  pull(ref: string, owner: PullOwner, registry?: RegistryCredentials): Promise<void> {
    const existing = this.inFlight.get(ref);
    if (existing) return existing.promise;
    const pull: Pull = { owner, layers: new Map(), promise: Promise.resolve() };
    pull.promise = this.run(ref, pull, registry).then(
      () => {
        this.failures.delete(ref);
        this.inFlight.delete(ref);
        this.opts.onSettled?.(ref);
      },
      (err: Error) => {
        const attempts = (this.failures.get(ref)?.attempts ?? 0) + 1;
        const delay = Math.min(this.baseBackoff * 2 ** (attempts - 1), this.maxBackoff);
        this.failures.set(ref, { attempts, retryAt: Date.now() + delay, error: err.message });
        this.inFlight.delete(ref);
        this.opts.onSettled?.(ref, err);
        throw err;
      },
    );
    this.inFlight.set(ref, pull);
    return pull.promise;
  }

  private async run(ref: string, pull: Pull, registry?: RegistryCredentials): Promise<void> {
    const free = await this.freeBytes();
    if (free !== undefined && free < this.minFree) {
      throw new DiskSpaceError(`not enough disk space to pull ${ref}: ${mb(free)} free on ${this.opts.dataRoot}, at least ${mb(this.minFree)} must stay free`);
    }
    const authconfig = registry ? { username: registry.username, password: registry.password, serveraddress: registry.url } : undefined;
    // An engine that stops answering must not hold the pull (and the service) forever.
    const stall = this.opts.stallTimeoutMs ?? 5 * 60_000;
    const controller = new AbortController();
    let watchdog = setTimeout(() => controller.abort(), stall);
    const stream = (await this.docker.pull(ref, { ...(authconfig ? { authconfig } : {}), abortSignal: controller.signal }).catch((err: Error) => {
      clearTimeout(watchdog);
      throw new Error(controller.signal.aborted ? `pull of ${ref} stalled for ${stall / 1000} s` : cleanPullError(err.message));
    })) as NodeJS.ReadableStream & { destroy(e?: Error): void };
    await new Promise<void>((resolve, reject) => {
      let aborted: Error | undefined;
      const abort = (err: Error) => {
        aborted = err;
        stream.destroy(err);
        reject(err);
      };
      clearTimeout(watchdog);
      watchdog = setTimeout(() => abort(new Error(`pull of ${ref} stalled: no progress for ${stall / 1000} s`)), stall);
      this.docker.modem.followProgress(
        stream,
        (err: Error | null) => {
          clearTimeout(watchdog);
          if (aborted) reject(aborted);
          else if (err) reject(new Error(cleanPullError(err.message)));
          else resolve();
        },
        (event: PullEvent) => {
          watchdog.refresh();
          trackLayer(pull.layers, event);
          const needed = sumTotals(pull.layers);
          if (free !== undefined && !aborted && needed > free - this.minFree) {
            abort(new DiskSpaceError(`not enough disk space to pull ${ref}: needs ${mb(needed)}, ${mb(free)} free`));
          }
        },
      );
    });
  }

  private async freeBytes(): Promise<number | undefined> {
    if (!this.opts.dataRoot) return undefined;
    try {
      const s = await fs.statfs(this.opts.dataRoot);
      return s.bavail * s.bsize;
    } catch {
      return undefined;
    }
  }
}

interface PullEvent {
  id?: string;
  status?: string;
  progressDetail?: { current?: number; total?: number };
}

function trackLayer(layers: Map<string, LayerProgress>, e: PullEvent): void {
  if (!e.id || !e.status) return;
  const layer = layers.get(e.id) ?? { current: 0, total: 0 };
  if (e.status === 'Downloading' && e.progressDetail?.total) {
    layer.total = e.progressDetail.total;
    layer.current = e.progressDetail.current ?? 0;
  } else if (e.status === 'Download complete' || e.status === 'Pull complete') {
    layer.current = layer.total;
  } else if (e.status !== 'Pulling fs layer' && e.status !== 'Waiting' && e.status !== 'Extracting' && e.status !== 'Verifying Checksum') {
    return;
  }
  layers.set(e.id, layer);
}

const sumTotals = (layers: Map<string, LayerProgress>) => [...layers.values()].reduce((n, l) => n + l.total, 0);
const mb = (n: number) => `${Math.round(n / 1024 / 1024)} MB`;

function cleanPullError(msg: string): string {
  return msg.replace(/^\(HTTP code \d+\)\s*\w*\s*-\s*/, '').trim();
}
