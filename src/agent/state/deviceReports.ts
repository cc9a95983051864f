// The device-level views of the current state that the device API serves: `GET /v1/device`,
// `GET /v2/state/status` and `GET /v2/applications/state`. Pure: built from the per-app reports.
import os from 'node:os';
import type { AppReport, ServiceReport } from './currentState.js';

export interface DeviceFacts {
  apiPort: number;
  osVersion: string | undefined;
  /** the balena API level Bosun serves (balena tools check it) */
  supervisorVersion: string;
  bosunVersion: string;
  /** an apply is running right now */
  applying: boolean;
}

/** Overall status, the busiest service wins; balena shows `Idle` when everything runs. */
const BUSY: [ServiceReport['status'], string][] = [
  ['Downloading', 'Downloading'],
  ['Stopping', 'Stopping'],
  ['Installing', 'Installing'],
  ['Starting', 'Starting'],
  ['Handing over', 'Starting'],
];

export function legacyDeviceState(apps: AppReport[], facts: DeviceFacts, net = hostAddresses()) {
  const services = apps.flatMap((a) => Object.values(a.services));
  const pending = apps.some((a) => a.releaseId !== a.targetReleaseId || a.updateStatus !== 'done');
  const first = apps.find((a) => a.targetReleaseId !== null) ?? apps[0];
  return {
    api_port: facts.apiPort,
    ip_address: net.ipAddresses.join(' '),
    mac_address: net.macAddresses.join(' '),
    os_version: facts.osVersion ?? null,
    supervisor_version: facts.supervisorVersion,
    update_pending: pending,
    update_downloaded: pending && services.every((s) => s.status !== 'Downloading' && s.status !== 'Aborted'),
    update_failed: pending && services.some((s) => s.error !== null),
    ...(facts.applying ? {} : { commit: first?.commit ?? null }),
    status: BUSY.find(([s]) => services.some((x) => x.status === s))?.[1] ?? 'Idle',
    download_progress: meanProgress(services),
    bosun: { version: facts.bosunVersion },
  };
}

export function stateStatus(apps: AppReport[], applying: boolean) {
  const first = apps[0];
  const services = first ? Object.entries(first.services) : [];
  const pending = apps.some((a) => a.updateStatus !== 'done');
  return {
    status: 'success',
    appState: applying || pending ? 'applying' : 'applied',
    overallDownloadProgress: meanProgress(services.map(([, s]) => s)),
    containers: services
      .filter(([, s]) => s.containerId)
      .map(([name, s]) => ({
        status: s.status,
        serviceName: name,
        appId: first!.appId,
        imageId: s.imageId,
        containerId: s.containerId,
        createdAt: s.createdAt,
      })),
    images: services.map(([name, s]) => ({
      name: s.image,
      appId: first!.appId,
      serviceName: name,
      dockerImageId: s.imageId,
      status: s.status === 'Downloading' || s.status === 'Aborted' ? s.status : 'Downloaded',
      downloadProgress: s.downloadProgress,
    })),
    release: first?.targetCommit ?? first?.commit ?? null,
  };
}

/** `GET /v2/applications/state`: keyed by app name. */
export function applicationsByName(apps: AppReport[]) {
  return Object.fromEntries(
    apps.map((a) => [
      a.appName || String(a.appId),
      {
        appId: a.appId,
        appUuid: a.appUuid,
        commit: a.commit,
        updateStatus: a.updateStatus,
        services: Object.fromEntries(
          Object.entries(a.services).map(([name, s]) => [
            name,
            { status: s.status, image: s.image, releaseId: s.releaseId, downloadProgress: s.downloadProgress, waiting: s.waiting },
          ]),
        ),
      },
    ]),
  );
}

function meanProgress(services: ServiceReport[]): number | null {
  const values = services.map((s) => s.downloadProgress).filter((p): p is number => p !== null);
  return values.length ? Math.round(values.reduce((a, b) => a + b, 0) / values.length) : null;
}

/** Interfaces of the engine and the agent itself are not the device's addresses. */
const VIRTUAL = /^(lo|docker\d*|br-|veth|supervisor0|balena0|resin-dns|bosun)/;

export function hostAddresses(): { ipAddresses: string[]; macAddresses: string[] } {
  const ipAddresses: string[] = [];
  const macAddresses = new Set<string>();
  for (const [name, addrs] of Object.entries(os.networkInterfaces())) {
    if (VIRTUAL.test(name)) continue;
    for (const a of addrs ?? []) {
      if (a.internal || a.family !== 'IPv4') continue;
      ipAddresses.push(a.address);
      macAddresses.add(a.mac.toUpperCase());
    }
  }
  return { ipAddresses, macAddresses: [...macAddresses] };
}
