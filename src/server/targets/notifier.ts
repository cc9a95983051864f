// Wakes devices that long-poll their target state when it changes, on every server node.
// The implementation (in-process for SQLite, LISTEN/NOTIFY for PostgreSQL) lives beside this file.

export interface TargetNotifier {
  /** Tells every server node that these devices' targets changed (after the change is committed). */
  notify(deviceIds: readonly string[]): Promise<void>;
  /** Resolves true when the device's target may have changed, false when the time is up or `signal` aborts. */
  waitForChange(deviceId: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean>;
  close(): Promise<void>;
}
