// Keys of the device API, balena-compatible: one per app (it may act on its own app only; its
// containers get it as BALENA_SUPERVISOR_API_KEY) and the device's own key (all apps).
// Kept in the agent database; compared in constant time; never logged.
import { digestsEqual, sha256 } from '../../shared/sha256.js';
import { randomHex } from '../randomHex.js';
import type { AgentStore } from '../store/agentStore.js';

export type KeyScope = { kind: 'device' } | { kind: 'app'; appId: number };

/** The config setting that holds the device key (also read by `bosun-agent device-key`, deviceKeyCommand.ts). */
export const DEVICE_KEY_SETTING = 'api_key:device';
const APP_PREFIX = 'api_key:app:';

const newKey = () => randomHex(32);
const digest = (key: string) => sha256(key);

export class ApiKeys {
  private constructor(
    private readonly store: AgentStore,
    private device: string,
    private readonly apps: Map<number, string>,
  ) {}

  static async load(store: AgentStore): Promise<ApiKeys> {
    const values = await store.configValues();
    const apps = new Map<number, string>();
    for (const [k, v] of values) if (k.startsWith(APP_PREFIX)) apps.set(Number(k.slice(APP_PREFIX.length)), v);
    let device = values.get(DEVICE_KEY_SETTING);
    if (!device) {
      device = await newKey();
      await store.updateConfig({ [DEVICE_KEY_SETTING]: device });
    }
    return new ApiKeys(store, device, apps);
  }

  deviceKey(): string {
    return this.device;
  }

  /** The app's key; ensureApps() must have created it (the desired state is built synchronously). */
  keyForApp(appId: number): string {
    const key = this.apps.get(appId);
    if (!key) throw new Error(`no API key for app ${appId} yet`);
    return key;
  }

  /** Creates keys for apps that have none, in one transaction; keys of other apps are kept. */
  async ensureApps(appIds: number[]): Promise<void> {
    const missing = appIds.filter((id) => !this.apps.has(id));
    if (!missing.length) return;
    const created = Object.fromEntries(await Promise.all(missing.map(async (id) => [id, await newKey()])));
    await this.store.updateConfig(Object.fromEntries(missing.map((id) => [`${APP_PREFIX}${id}`, created[id]!])));
    for (const id of missing) this.apps.set(id, created[id]!);
  }

  /** Which scope a presented key has; every stored key is compared, each in constant time. */
  authenticate(presented: string): KeyScope | undefined {
    const d = digest(presented);
    let found: KeyScope | undefined;
    if (digestsEqual(d, digest(this.device))) found = { kind: 'device' };
    for (const [appId, key] of this.apps) {
      if (digestsEqual(d, digest(key)) && !found) found = { kind: 'app', appId };
    }
    return found;
  }

  /** Replaces the key of this scope: the old one stops working at once. */
  async regenerate(scope: KeyScope): Promise<string> {
    const key = await newKey();
    if (scope.kind === 'device') {
      await this.store.updateConfig({ [DEVICE_KEY_SETTING]: key });
      this.device = key;
    } else {
      await this.store.updateConfig({ [`${APP_PREFIX}${scope.appId}`]: key });
      this.apps.set(scope.appId, key);
    }
    return key;
  }
}
