// What the dependent apps/devices tests share: a gateway project with two gateways (A and B), another
// project with its own gateway (C), a dependent app of each project, and the device link calls a
// gateway makes for its dependent devices (provisioning, log lines).
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import type { Server } from '../../src/server/server.js';
import { device, listen, newDevice, newProject, user } from './helpers.js';

export interface Gateway {
  id: string;
  key: string;
  link: ReturnType<typeof device>;
  /** POST /device/v1/dependent-devices */
  provision(body: Record<string, unknown>): Promise<{ status: number; body: Record<string, unknown> }>;
  /** POST /device/v1/logs: lines numbered from `seq` */
  logs(lines: Record<string, unknown>[], seq?: number): Promise<{ status: number; body: Record<string, unknown> }>;
}

export interface Fleet {
  base: string;
  call: ReturnType<typeof user>;
  project: number;
  other: number;
  /** a dependent app of `project`, and one of `other` */
  app: number;
  otherApp: number;
  a: Gateway;
  b: Gateway;
  c: Gateway;
}

async function gateway(server: Server, base: string, project: number): Promise<Gateway> {
  const d = await newDevice(server, project);
  const headers = { authorization: `Bearer ${d.key}` };
  return {
    ...d,
    link: device(base, d.key),
    async provision(body) {
      const res = await fetch(`${base}/device/v1/dependent-devices`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
    async logs(lines, seq = 1) {
      const numbered = lines.map((l, i) => ({
        seq: seq + i,
        ts: new Date(Date.UTC(2024, 4, 1, 10, 0, i)).toISOString(),
        stream: 'stdout',
        message: 'm',
        ...l,
      }));
      const res = await fetch(`${base}/device/v1/logs?queue=queue-${d.id.slice(0, 8)}`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' },
        body: new Uint8Array(gzipSync(numbered.map((l) => JSON.stringify(l)).join('\n'))),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    },
  };
}

/** Two projects, each with a release for its gateways (so they run it) and a dependent app. */
export async function fleet(server: Server): Promise<Fleet> {
  const base = await listen(server);
  const call = user(server);
  const project = await newProject(server, [], 'gateways');
  const other = await newProject(server, [], 'elsewhere');
  const [a, b, c] = [await gateway(server, base, project), await gateway(server, base, project), await gateway(server, base, other)];
  for (const p of [project, other]) {
    const release = await call('POST', `/docker/projects/${p}/releases/`, { version: '1', containers: [{ name: 'gw', image: 'acme/gateway', tag: '1' }] });
    assert.equal(release.status, 201, release.text);
  }
  const app = await call('POST', `/docker/projects/${project}/dependent-apps/`, { name: 'edge', device_type: 'esp32' });
  assert.equal(app.status, 201, app.text);
  const otherApp = await call('POST', `/docker/projects/${other}/dependent-apps/`, { name: 'edge', device_type: 'esp32' });
  assert.equal(otherApp.status, 201, otherApp.text);
  return { base, call, project, other, app: Number(app.body.id), otherApp: Number(otherApp.body.id), a, b, c };
}

export const DIGEST = `sha256:${'ab'.repeat(32)}`;
