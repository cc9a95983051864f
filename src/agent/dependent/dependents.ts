// The gateway side of dependent apps and devices (balena's proxyvisor), loaded when a target has a
// `dependent` part or the gateway app first calls the API: it pulls the dependent apps' images (never
// runs them) and serves their /assets, provisions devices (on the control plane when it answers, else
// locally and synced later), keeps what the gateway app reports of them for the state report, ships
// their log lines, and owes the gateway app its hooks (hookRunner.ts).
import path from 'node:path';
import type Docker from 'dockerode';
import {
  MAX_DEPENDENT_DEVICES,
  type DependentDeviceReport,
  type DependentProvision,
  type DependentProvisioned,
  type DependentTarget,
} from '../../shared/dependents.js';
import type { ShippedLogLine } from '../../shared/deviceLogs.js';
import { ConflictError, NotFoundError, UnauthorizedError } from '../../shared/errors.js';
import { isoTime } from '../../shared/isoTime.js';
import type { TargetState } from '../../shared/targetState.js';
import type { KeyScope } from '../api/apiKeys.js';
import { describe } from '../cloud/cloudLink.js';
import { request } from '../cloud/httpClient.js';
import type { EventLog } from '../eventLog.js';
import type { ImagePuller } from '../images/imagePuller.js';
import { randomHex } from '../randomHex.js';
import type { AgentDb } from '../store/database.js';
import { AssetCache } from './assets.js';
import { DependentImages } from './dependentImages.js';
import type { DependentDeviceDetail, DependentDeviceView, DependentsApi, DeviceUpdate, ProvisionedView } from './dependentPort.js';
import { DependentStore, type DependentDevice, type RegisterRefusal } from './dependentStore.js';
import { changedReports, effectiveTarget, hookAddress, targetChanges, targetDigest, type Backoff, type SentReports } from './hookPlan.js';
import { HookRunner, type HookBody } from './hookRunner.js';

export interface DependentsDeps {
  db: AgentDb;
  docker: Docker;
  scope: string | undefined;
  dataDir: string;
  puller: ImagePuller;
  /** the agent pulled this image: image cleanup may remove it once no longer kept */
  trackImage(ref: string, appId: number): Promise<void>;
  log: EventLog;
  target(): TargetState | undefined;
  /** cloud mode, once registered: where and how to reach the control plane */
  link(): { endpoint: string; deviceKey: string } | undefined;
  /** a line for the control plane's logs, on disk when it resolves (cloud mode); false when there is no log channel */
  shipLog(line: Omit<ShippedLogLine, 'seq'>): Promise<boolean>;
  /** the dependent devices' state changed */
  reportChanged(): void;
  /** the images to keep changed, or one arrived: the reconciler may clean up */
  imagesChanged(): void;
  hookTimeoutMs?: number;
  hookBackoff?: Backoff;
  assetCacheBytes?: number;
}

const EMPTY: DependentTarget = { apps: {}, devices: {} };
const DEFAULT_DEVICE_TYPE = 'generic-amd64';
const SYNC_MAX_MS = 60_000;

export class Dependents implements DependentsApi {
  readonly store: DependentStore;
  private readonly hooks: HookRunner;
  private readonly assetCache: AssetCache;
  private readonly images: DependentImages;
  private sent: SentReports = new Map();
  private syncTimer: NodeJS.Timeout | undefined;
  private syncFailures = 0;
  private syncing: Promise<void> | undefined;
  private stopped = false;
  private applying: Promise<void> = Promise.resolve();
  /** acknowledged reports written one after the other (on disk: a restart reports only what changed since) */
  private persisting: Promise<void> = Promise.resolve();
  /** dependent app → its gateway app, of every target seen (a deleted app's devices still get their DELETE hook there) */
  private readonly parents = new Map<number, number>();

  static async open(deps: DependentsDeps): Promise<Dependents> {
    const d = new Dependents(deps);
    await d.images.load();
    d.sent = new Map((await d.store.devices()).map((s) => [s.uuid, s.reported]));
    await d.applyTarget();
    d.sync();
    return d;
  }

  private constructor(private readonly d: DependentsDeps) {
    this.store = new DependentStore(d.db);
    this.assetCache = new AssetCache({ docker: d.docker, dir: path.join(d.dataDir, 'dependent-assets'), scope: d.scope, maxBytes: d.assetCacheBytes });
    this.images = new DependentImages({ ...d, store: this.store, assets: this.assetCache });
    this.hooks = new HookRunner({
      store: this.store,
      address: (hook) => hookAddress(d.target(), hook.gateway ?? this.parents.get(hook.appId) ?? 0),
      reportedCommit: async (uuid) => (await this.store.device(uuid))?.state.commit,
      log: d.log,
      ...(d.hookTimeoutMs ? { timeoutMs: d.hookTimeoutMs } : {}),
      ...(d.hookBackoff ? { backoff: d.hookBackoff } : {}),
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.syncTimer);
    this.images.stop();
    await this.syncing;
    await this.persisting;
    await this.hooks.stop();
  }

  /** Images of dependent releases the gateway keeps (the newest of each app, and those devices are pinned to). */
  keepImages(): ReadonlySet<string> {
    return this.images.keep;
  }

  /** The target changed (or the agent started): devices added and deleted, hooks queued, images pulled. One at a time. */
  applyTarget(): Promise<void> {
    const run = this.applying.then(() => this.apply());
    this.applying = run.catch(() => undefined);
    return run;
  }

  private async apply(): Promise<void> {
    const target = this.dependent();
    const dueAt = Date.now();
    for (const [id, app] of Object.entries(target.apps)) this.parents.set(Number(id), app.parent_app);
    await this.images.record(target);
    const stored = await this.store.devices();
    const changes = targetChanges(stored, target);
    for (const uuid of changes.added) {
      const t = target.devices[uuid]!;
      await this.store.insert({ uuid, serverId: t.id, appId: t.app_id, name: t.name, deviceType: t.device_type, note: null, logsChannel: await randomHex(32) });
    }
    const updates = new Map(changes.updates.map((u) => [u.uuid, u]));
    for (const [uuid, t] of Object.entries(target.devices)) {
      const u = updates.get(uuid);
      await this.store.setTarget(uuid, t, u ? { key: u.key, body: this.hookBody(t.app_id, u.body), dueAt } : undefined);
      updates.delete(uuid);
    }
    await this.retryRefused(stored, target);
    const appOf = new Map(stored.map((s) => [s.uuid, s.appId]));
    for (const u of updates.values()) await this.store.setHooked(u.uuid, u.key, this.hookBody(appOf.get(u.uuid)!, u.body), dueAt);
    for (const uuid of changes.deleted) {
      await this.store.remove(uuid, this.hookBody(appOf.get(uuid)!), dueAt);
      this.d.log.info(`Dependent device ${uuid} was deleted`);
    }
    this.hooks.kick();
    await this.images.keepWanted(await this.store.devices(), target);
    if (Object.keys(target.devices).length || changes.deleted.length) this.d.reportChanged();
    this.sync();
  }

  // ---- the device API ---------------------------------------------------------------------------

  apps(scope: KeyScope) {
    this.assertGateway(scope);
    return Object.entries(this.dependent().apps)
      .filter(([, a]) => this.covers(scope, a.parent_app))
      .map(([id, a]) => ({ id: Number(id), name: a.name, commit: a.release?.commit ?? null, config: a.config }));
  }

  async assets(scope: KeyScope, appId: number, commit: string): Promise<string> {
    this.assertApp(scope, appId);
    const image = this.images.kept(appId, commit);
    if (!image) throw new NotFoundError(`dependent app ${appId} has no release ${commit} on this gateway`);
    return this.assetCache.tar(appId, commit, image);
  }

  async devices(scope: KeyScope): Promise<DependentDeviceView[]> {
    this.assertGateway(scope);
    return (await this.store.devices()).filter((d) => this.covers(scope, this.parentOf(d.appId))).map((d) => this.view(d));
  }

  async device(scope: KeyScope, uuid: string): Promise<DependentDeviceDetail> {
    const d = await this.reachable(scope, uuid);
    return detail(this.view(d), d.refused);
  }

  async provision(scope: KeyScope, appId: number, deviceType: string | undefined): Promise<ProvisionedView> {
    this.assertApp(scope, appId);
    // bounded as the target bounds them: the hooks and the reports are per device
    if ((await this.store.devices()).length >= MAX_DEPENDENT_DEVICES)
      throw new ConflictError(`this gateway already has ${MAX_DEPENDENT_DEVICES} dependent devices, the most it keeps`);
    const uuid = await randomHex(16);
    const type = deviceType ?? DEFAULT_DEVICE_TYPE;
    // stored first: a crash after the control plane created it is no duplicate (the sync sends the same uuid)
    await this.store.insert({
      uuid,
      serverId: null,
      appId,
      name: `dependent-${uuid.slice(0, 7)}`,
      deviceType: type,
      note: null,
      logsChannel: await randomHex(32),
    });
    if (this.d.link())
      await this.syncOne((await this.store.device(uuid))!).catch((err: Error) => {
        if (err instanceof Refused) return;
        this.d.log.warn(`Dependent device ${uuid} provisioned on the gateway only for now (${err.message}); it is registered when the control plane answers`);
        this.sync(true);
      });
    await this.applyTarget(); // its update hook, for the app's newest release
    const d = (await this.store.device(uuid))!;
    return { id: d.serverId ?? d.id, uuid, name: d.name, note: d.note, device_type: d.deviceType };
  }

  async update(scope: KeyScope, uuid: string, u: DeviceUpdate): Promise<DependentDeviceDetail> {
    const d = await this.reachable(scope, uuid);
    const state: DependentDeviceReport = { ...d.state, ...definedOnly(u), last_seen: isoTime() };
    await this.store.setState(uuid, state);
    // the gateway app posts the device again: a refused registration is tried once more
    if (d.refused) {
      await this.store.setRefused(uuid, null);
      this.sync();
    }
    // the device runs the commit an update hook asked for: the hook has done its work
    for (const h of await this.store.hooks())
      if (h.uuid === uuid && h.kind === 'update' && u.commit && (h.body as HookBody).send?.commit === u.commit) await this.store.endHook(h);
    this.d.reportChanged();
    return detail(this.view({ ...d, state }), null);
  }

  async log(scope: KeyScope, uuid: string, message: string, ts: Date): Promise<void> {
    await this.reachable(scope, uuid);
    const shipped = await this.d.shipLog({ ts: isoTime(ts.getTime()), stream: 'stdout', message, dependent_uuid: uuid });
    if (!shipped) this.d.log.logger.info({ dependent_uuid: uuid }, message);
  }

  async restart(scope: KeyScope, uuid: string): Promise<void> {
    const d = await this.reachable(scope, uuid);
    await this.store.addHook({ uuid, kind: 'restart', body: this.hookBody(d.appId), attempts: 0, dueAt: Date.now() });
    this.hooks.kick();
  }

  // ---- the state report -------------------------------------------------------------------------

  /** What changed on the devices the control plane knows; `ack` once it accepted them. */
  async reportPatch(): Promise<{ patch: Record<string, DependentDeviceReport>; ack(): void }> {
    const current = new Map((await this.store.devices()).filter((d) => d.synced).map((d) => [d.uuid, d.state]));
    const { patch, sent } = changedReports(current, this.sent);
    const ack = () => {
      this.sent = sent;
      const acked = new Map(Object.keys(patch).map((uuid) => [uuid, sent.get(uuid)!]));
      this.persisting = this.persisting
        .then(() => this.store.setReported(acked))
        .catch((err: Error) => this.d.log.warn(`Dependent devices' reported state not stored: ${err.message}`));
    };
    return { patch, ack };
  }

  // ---- inside -----------------------------------------------------------------------------------

  private dependent(): DependentTarget {
    return this.d.target()?.dependent ?? EMPTY;
  }

  private hookBody(appId: number, send?: HookBody['send']): HookBody {
    const gateway = this.parents.get(appId);
    return { appId, ...(gateway !== undefined ? { gateway } : {}), ...(send ? { send } : {}) };
  }

  private parentOf(appId: number): number | undefined {
    return this.dependent().apps[String(appId)]?.parent_app;
  }

  private covers(scope: KeyScope, gatewayApp: number | undefined): boolean {
    return scope.kind === 'device' || (gatewayApp !== undefined && scope.appId === gatewayApp);
  }

  /** An app's key must be a gateway app's (another app gets 401). */
  private assertGateway(scope: KeyScope): void {
    if (scope.kind === 'app' && !Object.values(this.dependent().apps).some((a) => a.parent_app === scope.appId))
      throw new UnauthorizedError(`app ${scope.appId} is no gateway: it has no dependent apps`);
  }

  private assertApp(scope: KeyScope, appId: number): void {
    const app = this.dependent().apps[String(appId)];
    if (!app) {
      this.assertGateway(scope);
      throw new NotFoundError(`no dependent app ${appId} on this gateway`);
    }
    if (!this.covers(scope, app.parent_app)) throw new UnauthorizedError(`this API key is not allowed to act on dependent app ${appId}`);
  }

  private async reachable(scope: KeyScope, uuid: string): Promise<DependentDevice> {
    this.assertGateway(scope);
    const d = await this.store.device(uuid);
    if (!d) throw new NotFoundError(`no dependent device ${uuid}`);
    if (!this.covers(scope, this.parentOf(d.appId))) throw new UnauthorizedError(`this API key is not allowed to act on dependent device ${uuid}`);
    return d;
  }

  private view(d: DependentDevice): DependentDeviceView {
    const target = effectiveTarget(d, this.dependent());
    return {
      id: d.id,
      uuid: d.uuid,
      appId: d.appId,
      device_type: d.deviceType,
      logs_channel: d.logsChannel,
      deviceId: d.serverId === null ? null : String(d.serverId),
      is_online: d.state.is_online ?? null,
      name: d.name,
      status: d.state.status ?? null,
      download_progress: d.state.download_progress ?? null,
      commit: d.state.commit ?? null,
      targetCommit: target?.commit ?? null,
      environment: d.state.environment ?? {},
      targetEnvironment: target?.environment ?? {},
      config: d.state.config ?? {},
      targetConfig: d.target?.config ?? {},
    };
  }

  /** A registration refused with 404 (app not given) is tried again once a new target gives the app. */
  private async retryRefused(stored: DependentDevice[], target: DependentTarget): Promise<void> {
    const digest = targetDigest(target);
    for (const d of stored)
      if (d.refused?.status === 404 && d.refused.target !== digest && target.apps[String(d.appId)]) await this.store.setRefused(d.uuid, null);
  }

  /** Registers the devices provisioned offline once the control plane answers (same uuid: never twice). */
  private sync(later = false): void {
    if (this.stopped || this.syncing || !this.d.link()) return;
    clearTimeout(this.syncTimer);
    const run = () => {
      this.syncing = this.syncAll().finally(() => (this.syncing = undefined));
    };
    if (!later) {
      run();
      return;
    }
    this.syncTimer = setTimeout(run, Math.min(SYNC_MAX_MS, 1000 * 2 ** this.syncFailures));
    this.syncTimer.unref();
  }

  private async syncAll(): Promise<void> {
    const pending = (await this.store.devices()).filter((d) => !d.synced && !d.refused);
    if (!pending.length) return;
    try {
      for (const d of pending)
        await this.syncOne(d).catch((err: Error) => {
          if (!(err instanceof Refused)) throw err;
        });
      this.syncFailures = 0;
      this.d.reportChanged();
    } catch (err) {
      this.syncFailures = Math.min(this.syncFailures + 1, 10);
      this.d.log.logger.warn({ err }, 'Dependent devices not registered yet');
      this.syncing = undefined;
      this.sync(true);
    }
  }

  private async syncOne(d: DependentDevice): Promise<void> {
    const link = this.d.link();
    if (!link) throw new Error('the gateway has no link to a control plane');
    const answer = await request(`${link.endpoint}/device/v1/dependent-devices`, {
      method: 'POST',
      headers: { authorization: `Bearer ${link.deviceKey}` },
      body: { app_id: d.appId, uuid: d.uuid, device_type: d.deviceType, name: d.name } satisfies DependentProvision,
      timeoutMs: 10_000,
    });
    if (answer.status === 404 || answer.status === 409) {
      // permanent: asking again every minute changes nothing (a 404 may pass with another target, any with the gateway app's PUT)
      const refused: RegisterRefusal = { status: answer.status, message: describe(answer), target: targetDigest(this.dependent()) };
      await this.store.setRefused(d.uuid, refused);
      this.d.log.warn(
        `Dependent device ${d.uuid} not registered: ${refused.message}; not tried again until the gateway app updates it or a new target gives its app`,
      );
      throw new Refused();
    }
    if (answer.status !== 200 && answer.status !== 201) throw new Error(describe(answer));
    const created = JSON.parse(answer.body) as DependentProvisioned;
    await this.store.setSynced(d.uuid, created.id, created.name);
  }
}

/** The control plane refused a registration for good (recorded on the device). */
class Refused extends Error {}

const definedOnly = (u: DeviceUpdate): DependentDeviceReport =>
  Object.fromEntries(Object.entries(u).filter(([, v]) => v !== undefined)) as DependentDeviceReport;

function detail(v: DependentDeviceView, refused: RegisterRefusal | null): DependentDeviceDetail {
  const { environment, targetEnvironment, config: _config, targetConfig: _targetConfig, ...rest } = v;
  const error = refused ? `the control plane refused to register it: ${refused.message}` : null;
  return { ...rest, env: environment, targetEnv: targetEnvironment, error };
}
