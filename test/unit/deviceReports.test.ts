// Device-level views served by the device API, from the per-app reports.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AppReport, ServiceReport } from '../../src/agent/state/currentState.js';
import { applicationsByName, legacyDeviceState, stateStatus } from '../../src/agent/state/deviceReports.js';

const svc = (over: Partial<ServiceReport> = {}): ServiceReport => ({
  status: 'Running',
  releaseId: 2,
  image: 'registry/app:v2',
  imageId: 'sha256:abc',
  containerId: 'c1',
  createdAt: '2026-01-01T00:00:00.000Z',
  downloadProgress: null,
  error: null,
  waiting: null,
  ...over,
});

const app = (over: Partial<AppReport> = {}, services: Record<string, ServiceReport> = { main: svc() }): AppReport => ({
  appId: 7,
  appUuid: 'u7',
  appName: 'myapp',
  releaseId: 2,
  commit: 'c0ffee',
  targetReleaseId: 2,
  targetCommit: 'c0ffee',
  updateStatus: 'done',
  settle: 'settled',
  services,
  ...over,
});

const facts = { apiPort: 48484, osVersion: 'Debian 12', supervisorVersion: '17.0.0', bosunVersion: '0.1.0', applying: false };
const net = { ipAddresses: ['192.168.0.114', '10.42.0.3'], macAddresses: ['B8:27:EB:3F:7E:07'] };

describe('GET /v1/device', () => {
  test('a converged device is Idle, nothing pending, with the commit it runs', () => {
    assert.deepEqual(legacyDeviceState([app()], facts, net), {
      api_port: 48484,
      ip_address: '192.168.0.114 10.42.0.3',
      mac_address: 'B8:27:EB:3F:7E:07',
      os_version: 'Debian 12',
      supervisor_version: '17.0.0',
      update_pending: false,
      update_downloaded: false,
      update_failed: false,
      commit: 'c0ffee',
      status: 'Idle',
      download_progress: null,
      bosun: { version: '0.1.0' },
    });
  });

  test('while downloading: pending, not downloaded, mean progress; no commit while applying', () => {
    const apps = [
      app(
        { releaseId: 1, updateStatus: 'downloading' },
        { a: svc({ status: 'Downloading', downloadProgress: 40 }), b: svc({ status: 'Downloading', downloadProgress: 81 }) },
      ),
    ];
    const s = legacyDeviceState(apps, { ...facts, applying: true }, net);
    assert.equal(s.status, 'Downloading');
    assert.equal(s.download_progress, 61);
    assert.equal(s.update_pending, true);
    assert.equal(s.update_downloaded, false);
    assert.ok(!('commit' in s));
  });

  test('downloaded but not applied (e.g. locked), and failed when a service reports an error', () => {
    const waiting = legacyDeviceState([app({ releaseId: 1, updateStatus: 'downloaded' }, { a: svc({ status: 'Downloaded' }) })], facts, net);
    assert.equal(waiting.update_downloaded, true);
    assert.equal(waiting.update_failed, false);
    const failed = legacyDeviceState(
      [app({ releaseId: 1, updateStatus: 'aborted' }, { a: svc({ status: 'Aborted', error: 'failed to download' }) })],
      facts,
      net,
    );
    assert.equal(failed.update_failed, true);
    assert.equal(failed.update_downloaded, false);
  });
});

describe('GET /v2/state/status and /v2/applications/state', () => {
  test('status lists the first app’s containers and images', () => {
    const s = stateStatus([app()], false);
    assert.equal(s.appState, 'applied');
    assert.deepEqual(s.containers, [
      { status: 'Running', serviceName: 'main', appId: 7, imageId: 'sha256:abc', containerId: 'c1', createdAt: '2026-01-01T00:00:00.000Z' },
    ]);
    assert.equal(s.images[0]!.status, 'Downloaded');
    assert.equal(s.release, 'c0ffee');
    assert.equal(stateStatus([app({ updateStatus: 'applying changes' })], false).appState, 'applying');
  });

  test('applications are keyed by name', () => {
    assert.deepEqual(applicationsByName([app()]), {
      myapp: {
        appId: 7,
        appUuid: 'u7',
        commit: 'c0ffee',
        updateStatus: 'done',
        services: { main: { status: 'Running', image: 'registry/app:v2', releaseId: 2, downloadProgress: null, waiting: null } },
      },
    });
  });
});
