// What the server tests share: the user API through inject, a device's calls over real HTTP, the
// fixtures they start from (provisioning keys, devices, projects) and waiting for things to happen.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from '../../src/server/server.js';
import type { LocalNotifier } from '../../src/server/wakeups/localNotifier.js';
import type { PgNotifier } from '../../src/server/wakeups/pgNotifier.js';
import type { TargetState } from '../../src/shared/targetState.js';

export type Json = Record<string, unknown> & Record<string, unknown>[];
export interface Answer {
  status: number;
  /** parsed JSON; `{}` when there is no body or it is not JSON */
  body: Json;
  text: string;
  type: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  ms: number;
}
/** A command as the device's command poll gives it. */
export interface Command {
  id: number;
  kind: string;
  payload: { method: string; path: string; body?: unknown };
}

/** The user API through inject, with the admin token unless told otherwise (`auth` '': none). */
export function user(server: Server, token = server.firstAdminToken!) {
  return async (method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE', url: string, payload?: unknown, auth = `APIToken ${token}`): Promise<Answer> => {
    const started = performance.now();
    const res = await server.app.inject({
      method,
      url,
      headers: auth ? { authorization: auth } : {},
      ...(payload !== undefined ? { payload: payload as object } : {}),
    });
    let body = {} as Json;
    try {
      body = JSON.parse(res.body) as Json;
    } catch {
      // no body, or text
    }
    const headers = res.headers as Answer['headers'];
    return { status: res.statusCode, body, text: res.body, type: headers['content-type'] as string | undefined, headers, ms: performance.now() - started };
  };
}

/** A device's calls over real HTTP, as the agent makes them (long polls hold a real connection). */
export function device(base: string, key: string) {
  const headers = (more: Record<string, string> = {}) => ({ authorization: `Bearer ${key}`, ...more });
  return {
    async state(opts: { etag?: string; wait?: number } = {}): Promise<{ status: number; etag: string | undefined; body: TargetState | undefined; ms: number }> {
      const started = performance.now();
      const res = await fetch(`${base}/device/v1/state${opts.wait !== undefined ? `?wait=${opts.wait}` : ''}`, {
        headers: headers(opts.etag ? { 'if-none-match': opts.etag } : {}),
      });
      const text = await res.text();
      return {
        status: res.status,
        etag: res.headers.get('etag') ?? undefined,
        body: text ? (JSON.parse(text) as TargetState) : undefined,
        ms: performance.now() - started,
      };
    },
    async report(body: unknown): Promise<{ status: number; body: string }> {
      const res = await fetch(`${base}/device/v1/state`, {
        method: 'PATCH',
        headers: headers({ 'content-type': 'application/json' }),
        body: JSON.stringify(body),
      });
      return { status: res.status, body: await res.text() };
    },
    async commands(wait?: number, signal?: AbortSignal): Promise<{ status: number; commands: Command[]; ms: number }> {
      const started = performance.now();
      const res = await fetch(`${base}/device/v1/commands${wait !== undefined ? `?wait=${wait}` : ''}`, { headers: headers(), ...(signal ? { signal } : {}) });
      const text = await res.text();
      return { status: res.status, commands: res.status === 200 ? (JSON.parse(text) as Command[]) : [], ms: performance.now() - started };
    },
    async result(id: number, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
      const res = await fetch(`${base}/device/v1/commands/${id}/result`, {
        method: 'POST',
        headers: headers({ 'content-type': 'application/json' }),
        body: JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
    },
  };
}

export async function listen(server: Server): Promise<string> {
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  return `http://127.0.0.1:${(server.app.server.address() as AddressInfo).port}`;
}

export const hex = (n = 16) => randomBytes(n).toString('hex');

export async function provisioningKey(server: Server, project: number | null = null): Promise<string> {
  const res = await user(server)('POST', '/provisioning-keys/', { name: 'fleet', ...(project !== null ? { project } : {}) });
  assert.equal(res.status, 201);
  return String(res.body.key);
}

export async function register(server: Server, key: string, body: Record<string, unknown> = { uuid: hex(), device_type: 'generic-amd64' }) {
  const res = await server.app.inject({ method: 'POST', url: '/device/register', headers: { authorization: `Bearer ${key}` }, payload: body });
  return { status: res.statusCode, body: JSON.parse(res.body) as { id: string; uuid: string; device_key: string; detail?: string; field?: string } };
}

/** A registered device (in `project`, when given). */
export async function newDevice(server: Server, project: number | null = null): Promise<{ id: string; uuid: string; key: string }> {
  const r = await register(server, await provisioningKey(server, project));
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return { id: r.body.id, uuid: r.body.uuid, key: r.body.device_key };
}

export async function newProject(server: Server, devices: string[] = [], name = 'fleet-app'): Promise<number> {
  const res = await user(server)('POST', '/docker/projects/', { name, devices });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return Number(res.body.id);
}

/** Pending waits on a server's notifier (long polls, result awaiters) whose key starts with `prefix`. */
export function waiting(server: Server, prefix = ''): number {
  return (server.notifier as LocalNotifier | PgNotifier).waiting(prefix);
}

export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
