// Wakes what waits on a device, on every server node: its target long poll, its command poll, the
// log tails of its lines. The implementation (in-process for SQLite, LISTEN/NOTIFY for PostgreSQL)
// lives beside this file.

export interface DeviceNotifier {
  /** Tells every server node that these devices' targets changed (after the change is committed). */
  notify(deviceIds: readonly string[]): Promise<void>;
  /** Resolves true when the device's target may have changed, false when the time is up or `signal` aborts. */
  waitForChange(deviceId: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  close(): Promise<void>;
}
