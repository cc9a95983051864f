// The images of a gateway's dependent apps: pulled (never run; registries from the target as for
// services), tracked so that the image cleanup removes them once they are no longer kept, and kept
// (with their /assets tars) while an app's newest release or a pinned device wants them. Releases
// seen are remembered a while longer (commit → image), so a device pinned back to one gets its image
// pulled again.
import type Docker from 'dockerode';
import type { DependentTarget } from '../../shared/dependents.js';
import type { TargetState } from '../../shared/targetState.js';
import { withDeadline } from '../engine/deadline.js';
import type { EventLog } from '../eventLog.js';
import type { ImagePuller } from '../images/imagePuller.js';
import { registryFor } from '../reconciler/serviceSpec.js';
import type { AssetCache } from './assets.js';
import type { DependentDevice, DependentStore } from './dependentStore.js';
import { effectiveTarget } from './hookPlan.js';

/** releases of an app remembered besides those wanted */
const RELEASES_REMEMBERED = 20;

export interface DependentImagesDeps {
  store: DependentStore;
  assets: AssetCache;
  docker: Docker;
  puller: ImagePuller;
  trackImage(ref: string, appId: number): Promise<void>;
  log: EventLog;
  target(): TargetState | undefined;
  imagesChanged(): void;
}

export class DependentImages {
  /** the images kept: what the image cleanup must leave */
  keep: ReadonlySet<string> = new Set();
  /** app → commit → image, oldest first */
  private readonly releases = new Map<number, Map<string, string>>();
  private pullTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly d: DependentImagesDeps) {}

  async load(): Promise<void> {
    for (const r of await this.d.store.releases()) this.release(r.appId).set(r.commit, r.image);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.pullTimer);
  }

  /** The image of a kept release. */
  kept(appId: number, commit: string): string | undefined {
    const image = this.releases.get(appId)?.get(commit);
    return image && this.keep.has(image) ? image : undefined;
  }

  /** Remembers the target's releases: each app's newest, and the older ones its devices are pinned to. */
  async record(target: DependentTarget): Promise<void> {
    for (const [id, app] of Object.entries(target.apps)) {
      const seen = this.release(Number(id));
      for (const pinned of app.pinned_releases ?? []) {
        if (seen.get(pinned.commit) === pinned.image) continue;
        seen.set(pinned.commit, pinned.image);
        await this.d.store.recordRelease(Number(id), pinned.commit, pinned.image);
      }
      if (!app.release) continue;
      seen.delete(app.release.commit); // the newest last
      seen.set(app.release.commit, app.release.image);
      await this.d.store.recordRelease(Number(id), app.release.commit, app.release.image);
    }
  }

  /**
   * Images and tars kept: each app's newest release, and the releases devices are pinned to. The
   * releases seen are remembered a while longer (the newest few of each app still in the target), so
   * that a device pinned back to one gets its image pulled again.
   */
  async keepWanted(devices: DependentDevice[], target: DependentTarget): Promise<void> {
    const wanted = new Map<number, Set<string>>();
    const want = (appId: number, commit: string | null | undefined) => commit && (wanted.get(appId) ?? wanted.set(appId, new Set()).get(appId)!).add(commit);
    for (const [id, app] of Object.entries(target.apps)) want(Number(id), app.release?.commit);
    for (const d of devices) want(d.appId, effectiveTarget(d, target)?.commit);
    const isWanted = (appId: number, commit: string) => wanted.get(appId)?.has(commit) === true;
    const keep = new Set<string>();
    for (const [appId, commits] of this.releases) {
      let spare = target.apps[String(appId)] ? RELEASES_REMEMBERED : 0;
      for (const [commit, image] of [...commits].reverse()) {
        if (isWanted(appId, commit)) keep.add(image);
        else if (spare-- <= 0) commits.delete(commit);
      }
    }
    await this.d.store.forgetReleases((appId, commit) => this.releases.get(appId)?.has(commit) === true);
    await this.d.assets.prune(isWanted);
    if ([...keep].some((i) => !this.keep.has(i)) || keep.size !== this.keep.size) {
      this.keep = keep;
      this.d.imagesChanged();
    }
    this.ensureImages();
  }

  /** Pulls the kept images that are missing; a failed pull is tried again after the puller's backoff. */
  private ensureImages(): void {
    if (this.stopped) return;
    clearTimeout(this.pullTimer);
    const target = this.d.target();
    for (const [appId, commits] of this.releases) {
      for (const image of commits.values()) {
        if (!this.keep.has(image)) continue;
        void this.pull(appId, image, target);
      }
    }
  }

  private async pull(appId: number, image: string, target: TargetState | undefined): Promise<void> {
    const engineImage = this.d.docker.getImage(image);
    // @types/dockerode lacks inspect()'s options; dockerode takes an abortSignal there as everywhere
    const present = await withDeadline((d) => (engineImage.inspect as (o: object) => Promise<unknown>).call(engineImage, d)).then(
      () => true,
      () => false,
    );
    if (present || this.d.puller.downloading().has(image)) return;
    // the registry the release names, else the one of the image's host
    const app = target?.dependent?.apps[String(appId)];
    const release = [app?.release, ...(app?.pinned_releases ?? [])].find((r) => r?.image === image);
    const registry = release?.registry !== undefined ? target?.registries?.[release.registry] : registryFor(image, target?.registries);
    await this.d.trackImage(image, appId);
    this.d.log.info(`Downloading image ${image} of dependent app ${appId}`);
    try {
      await this.d.puller.pull(image, { appId, serviceName: 'dependent' }, registry);
      this.d.log.info(`Downloaded image ${image}`);
      this.d.imagesChanged();
    } catch (err) {
      const retryAt = this.d.puller.failure(image)?.retryAt ?? Date.now() + 60_000;
      this.d.log.error(`Failed to download image ${image} of dependent app ${appId}: ${(err as Error).message}`);
      if (!this.stopped) {
        this.pullTimer = setTimeout(() => this.ensureImages(), Math.max(1000, retryAt - Date.now()));
        this.pullTimer.unref();
      }
    }
  }

  private release(appId: number): Map<string, string> {
    let m = this.releases.get(appId);
    if (!m) this.releases.set(appId, (m = new Map()));
    return m;
  }
}
