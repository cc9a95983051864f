// What the device API's test files share: an agent deployed on the real engine with its API client,
// assertions on balena's answers, and reading containers, the host's actions and files.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { containersOf, converge, docker, service, startAgent, target, type AppSpec, type TestAgent, type TestContainer } from './harness.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

interface Res {
  status: number;
  text: string;
  body: Json;
}

interface CallOpts {
  /** sent as `?apikey=` */
  key?: string;
  /** sent as `Authorization: Bearer` */
  bearer?: string;
  /** JSON body */
  json?: unknown;
  /** body sent as is, with a JSON content type */
  raw?: string;
  /** a JSON content type and no body, as the document's curl examples send */
  jsonHeaderOnly?: boolean;
}

interface Api {
  base: string;
  port: number;
  deviceKey(): Promise<string>;
  key(appId: number): Promise<string>;
  call(method: string, urlPath: string, opts?: CallOpts): Promise<Res>;
}

function apiOf(ta: TestAgent): Api {
  const port = ta.agent.apiPort();
  assert.ok(port, 'the agent serves its API');
  const base = `http://127.0.0.1:${port}`;
  return {
    base,
    port,
    deviceKey: async () => ta.agent.apiKeys.deviceKey(),
    key: async (appId) => ta.agent.apiKeys.keyForApp(appId),
    call: async (method, urlPath, opts = {}) => {
      const url = new URL(urlPath, base);
      if (opts.key !== undefined) url.searchParams.set('apikey', opts.key);
      const headers: Record<string, string> = {};
      if (opts.bearer !== undefined) headers.authorization = `Bearer ${opts.bearer}`;
      let body: string | undefined;
      if (opts.json !== undefined) body = JSON.stringify(opts.json);
      if (opts.raw !== undefined) body = opts.raw;
      if (body !== undefined || opts.jsonHeaderOnly) headers['content-type'] = 'application/json';
      const res = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
      const text = await res.text();
      let parsed: Json;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      return { status: res.status, text, body: parsed };
    },
  };
}

export const show = (r: Res) => `${r.status} ${r.text}`;

/** A 4xx (or the given status) with balena's JSON error body and a message. */
export function assertFailed(r: Res, status: number, message?: RegExp): void {
  assert.equal(r.status, status, show(r));
  assert.equal(typeof r.body, 'object', `not a JSON body: ${show(r)}`);
  assert.equal(r.body.status, 'failed', show(r));
  assert.equal(typeof r.body.message, 'string', show(r));
  assert.ok(r.body.message.length > 0, show(r));
  if (message) assert.match(r.body.message, message, show(r));
}

export function assertClientError(r: Res): void {
  assert.ok(r.status >= 400 && r.status < 500, `expected a 4xx: ${show(r)}`);
  assert.ok(r.body && typeof r.body.message === 'string' && r.body.message.length > 0, `expected a message: ${show(r)}`);
}

export const assertOk = (r: Res) => {
  assert.equal(r.status, 200, show(r));
  assert.equal(r.text.trim(), 'OK', show(r));
};

interface Deployed extends TestAgent {
  api: Api;
}

export async function deploy(t: TestContext, apps: Record<number, AppSpec>): Promise<Deployed> {
  const ta = await startAgent(t, Object.keys(apps).map(Number));
  await ta.agent.setTarget(target(apps), 'test');
  await converge(ta.agent);
  return { ...ta, api: apiOf(ta) };
}

export const inspect = (id: string) => docker.getContainer(id).inspect();
export const running = async (id: string) => (await inspect(id)).State.Running;
export async function envOf(id: string): Promise<Record<string, string>> {
  const env = (await inspect(id)).Config.Env ?? [];
  return Object.fromEntries(env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
}
const byService = (cs: TestContainer[], name: string) => {
  const c = cs.find((x) => x.service === name);
  assert.ok(c, `no container for ${name}: ${JSON.stringify(cs)}`);
  return c;
};
export const containerOf = async (appId: number, name: string) => byService(await containersOf(appId), name);

export async function hostActions(dataDir: string): Promise<{ action: string; at: string }[]> {
  const text = await fs.readFile(path.join(dataDir, 'host', 'actions.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { action: string; at: string });
}
export const readIf = (p: string) => fs.readFile(p, 'utf8').catch(() => undefined);

export const oneService = (overrides: Parameters<typeof service>[0] = {}): AppSpec => ({ services: { main: service(overrides) } });
export const twoServices = (): AppSpec => ({ services: { main: service(), side: service() } });
export const withVolume = (): AppSpec => ({ services: { main: service({ volumes: ['data:/data'] }) }, volumes: { data: {} } });
