// Pure decisions about dependent devices and the hooks owed to the gateway app (balena's proxyvisor
// hooks): which devices a new target adds or deletes, which need an update hook, where a hook goes,
// when a failed or "repeat" (202) hook is tried again, and what a state report must carry.
import type { DependentDeviceReport, DependentTarget } from '../../shared/dependents.js';
import type { TargetState } from '../../shared/targetState.js';

export type HookKind = 'update' | 'restart' | 'delete';

/** balena's default: the gateway app's hook server, the device's uuid appended. */
export const DEFAULT_HOOK_ADDRESS = 'http://0.0.0.0:1337/v1/devices/';
export const HOOK_ADDRESS_VAR = 'BALENA_DEPENDENT_DEVICES_HOOK_ADDRESS';

/** What the gateway keeps of one dependent device, as the decisions here need it. */
export interface DeviceRecord {
  uuid: string;
  appId: number;
  /** the control plane knows it (provisioned online, or synced since) */
  synced: boolean;
  /** a target of the control plane listed it: its absence from a later one means it was deleted */
  seen: boolean;
  /** JSON of the {commit, environment} the last update hook was queued for */
  hooked: string | null;
}

export interface UpdateHookBody {
  commit: string;
  environment: Record<string, string>;
}

export interface TargetChanges {
  /** devices of the target the gateway does not have yet */
  added: string[];
  /** devices the control plane deleted: a DELETE hook each, and they go */
  deleted: string[];
  /** update hooks to queue, with the key to record as `hooked` */
  updates: { uuid: string; body: UpdateHookBody; key: string }[];
}

/**
 * What a device should run: its target from the control plane; a device provisioned offline (not
 * in any target yet) gets its app's newest release, as the control plane will give it.
 */
export function effectiveTarget(d: Pick<DeviceRecord, 'uuid' | 'appId' | 'synced'>, target: DependentTarget): UpdateHookBody | undefined {
  const own = target.devices[d.uuid];
  if (own) return own.commit ? { commit: own.commit, environment: own.environment } : undefined;
  if (d.synced) return undefined;
  const commit = target.apps[String(d.appId)]?.release?.commit;
  return commit ? { commit, environment: {} } : undefined;
}

export function targetChanges(stored: readonly DeviceRecord[], target: DependentTarget): TargetChanges {
  const byUuid = new Map(stored.map((d) => [d.uuid, d]));
  const added = Object.keys(target.devices).filter((uuid) => !byUuid.has(uuid));
  // never a device provisioned here and not yet synced (it is in no target), nor one not seen yet,
  // unless the target says it was deleted (it was, before any target listed it)
  const tombstones = new Set(target.deleted);
  const deleted = stored.filter((d) => !target.devices[d.uuid] && (d.seen || tombstones.has(d.uuid))).map((d) => d.uuid);
  const gone = new Set(deleted);
  const updates: TargetChanges['updates'] = [];
  const candidates: DeviceRecord[] = [
    ...stored.filter((d) => !gone.has(d.uuid)),
    ...added.map((uuid) => ({ uuid, appId: target.devices[uuid]!.app_id, synced: true, seen: true, hooked: null })),
  ];
  for (const d of candidates) {
    const body = effectiveTarget(d, target);
    if (!body) continue;
    const key = hookKey(body);
    if (key !== d.hooked) updates.push({ uuid: d.uuid, body, key });
  }
  return { added, deleted, updates };
}

/** Stable JSON of an update hook's body (environment keys sorted), to tell a change. */
export function hookKey(body: UpdateHookBody): string {
  const environment = Object.fromEntries(Object.entries(body.environment).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify({ commit: body.commit, environment });
}

/** The hook address the gateway app set in its services' environment, else balena's default. */
export function hookAddress(target: TargetState | undefined, gatewayAppId: number): string {
  const services = target?.apps[String(gatewayAppId)]?.release.services ?? {};
  for (const svc of Object.values(services)) {
    const set = svc.environment?.[HOOK_ADDRESS_VAR];
    if (set) return set;
  }
  return DEFAULT_HOOK_ADDRESS;
}

/**
 * The URL of one hook. The agent runs on the host: `0.0.0.0` (balena's default, meaning "this
 * device") is the host's loopback, where a gateway app publishing its hook port (or on the host
 * network) answers.
 */
export function hookUrl(address: string, uuid: string, kind: HookKind): string {
  const u = new URL(address);
  if (u.hostname === '0.0.0.0') u.hostname = '127.0.0.1';
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  u.pathname += kind === 'restart' ? `${uuid}/restart` : uuid;
  return u.toString();
}

export const HOOK_METHOD: Record<HookKind, string> = { update: 'PUT', restart: 'PUT', delete: 'DELETE' };

export interface Backoff {
  baseMs: number;
  maxMs: number;
}
export const HOOK_BACKOFF: Backoff = { baseMs: 1000, maxMs: 60_000 };

/** The wait before attempt `attempts + 1` (after `attempts` that did not end the hook): doubling, capped. */
export function hookDelayMs(attempts: number, b: Backoff = HOOK_BACKOFF): number {
  return Math.min(b.maxMs, b.baseMs * 2 ** Math.max(0, Math.min(30, attempts - 1)));
}

/** Restart and delete hooks give up after this many failed attempts; an update hook never does. */
export const MAX_ONE_SHOT_ATTEMPTS = 20;

export type HookOutcome = 'done' | 'repeat' | 'failed';

/**
 * What an answer means: 200 (any 2xx but 202) ends a hook; 202 to an update asks for a repeat until
 * the device reports the commit (done when it already does); anything else is a failure, retried.
 */
export function hookOutcome(kind: HookKind, status: number | undefined, reportedCommit: string | null | undefined, hookCommit?: string): HookOutcome {
  if (status === undefined || status < 200 || status >= 300) return 'failed';
  if (status !== 202 || kind !== 'update') return 'done';
  return reportedCommit != null && reportedCommit === hookCommit ? 'done' : 'repeat';
}

/** Per device, the JSON of each field the control plane last accepted. */
export type SentReports = ReadonlyMap<string, Readonly<Record<string, string>>>;

/** Per device, only the fields that differ from what the control plane last accepted. */
export function changedReports(
  current: ReadonlyMap<string, DependentDeviceReport>,
  sent: SentReports,
): { patch: Record<string, DependentDeviceReport>; sent: Map<string, Record<string, string>> } {
  const patch: Record<string, DependentDeviceReport> = {};
  const next = new Map<string, Record<string, string>>();
  for (const [uuid, report] of current) {
    const fields: Record<string, string> = {};
    const before = sent.get(uuid) ?? {};
    const changed: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(report)) {
      if (v === undefined) continue;
      fields[k] = JSON.stringify(v);
      if (before[k] !== fields[k]) changed[k] = v;
    }
    next.set(uuid, fields);
    if (Object.keys(changed).length) patch[uuid] = changed as DependentDeviceReport;
  }
  return { patch, sent: next };
}

/** A short digest of a dependent target (FNV-1a of its JSON): tells a new target from the one a refusal saw. */
export function targetDigest(target: DependentTarget): string {
  const json = JSON.stringify(target);
  let h = 0x811c9dc5;
  for (let i = 0; i < json.length; i++) h = Math.imul(h ^ json.charCodeAt(i), 0x01000193);
  return `${json.length.toString(16)}-${(h >>> 0).toString(16)}`;
}
