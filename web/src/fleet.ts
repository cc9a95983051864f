// The fleet as the server's event stream says it is (GET /dongle/devices/events/): one stream for the
// whole dashboard, shared by the fleet page and the device pages, started at login.
import { useSyncExternalStore } from 'react';
import { events } from './api';
import type { Device } from './types';

export interface FleetState {
  devices: ReadonlyMap<string, Device>;
  /** bumped on every change, so that lists re-derive */
  version: number;
  connected: boolean;
  error?: string;
}

let state: FleetState = { devices: new Map(), version: 0, connected: false };
const listeners = new Set<() => void>();
let stop: AbortController | undefined;

function set(next: Partial<FleetState>) {
  state = { ...state, ...next, version: state.version + 1 };
  for (const l of listeners) l();
}

/** Changes of one read of the stream, applied to a copy and shown together (one copy of the fleet, not one a device). */
let pending: Map<string, Device> | undefined;
function change(): Map<string, Device> {
  if (!pending) {
    pending = new Map(state.devices);
    setTimeout(() => {
      const devices = pending;
      pending = undefined;
      // a snapshot (or a logout) since has replaced these changes
      if (devices) set({ devices });
    });
  }
  return pending;
}

export function startFleet(): void {
  if (stop) return;
  stop = new AbortController();
  void events(
    '/dongle/devices/events/',
    (e) => {
      if (e.event === 'snapshot') {
        pending = undefined;
        set({ devices: new Map((JSON.parse(e.data) as Device[]).map((d) => [d.id, d])) });
      } else if (e.event === 'device') {
        const d = JSON.parse(e.data) as Device;
        change().set(d.id, d);
      } else if (e.event === 'removed') change().delete((JSON.parse(e.data) as { id: string }).id);
    },
    stop.signal,
    (connected, error) => set({ connected, ...(error !== undefined ? { error } : {}) }),
  );
}

export function stopFleet(): void {
  stop?.abort();
  stop = undefined;
  pending = undefined;
  state = { devices: new Map(), version: 0, connected: false };
}

export function useFleet(): FleetState {
  return useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => state,
  );
}
