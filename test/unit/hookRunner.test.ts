// The hook queue of a gateway (src/agent/dependent/hookRunner.ts) on a real agent database and a
// local HTTP server: a 202 is repeated with backoff until the device reports the commit, a 200 ends
// a hook, what is owed is on disk, and a hook address that is no URL is retried like a dead server.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { DependentStore } from '../../src/agent/dependent/dependentStore.js';
import { HookRunner } from '../../src/agent/dependent/hookRunner.js';
import { openAgentDb } from '../../src/agent/store/database.js';

const UUID = 'a'.repeat(32);
const quiet = { info: () => undefined, logger: { warn: () => undefined } };
const cleanups: (() => Promise<unknown>)[] = [];
after(() => Promise.all(cleanups.map((c) => c())));

async function store(): Promise<DependentStore> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-hooks-'));
  const db = await openAgentDb(path.join(dir, 'agent.sqlite'));
  cleanups.push(() => db.destroy().then(() => fs.rm(dir, { recursive: true, force: true })));
  return new DependentStore(db);
}

async function until<T>(what: string, fn: () => Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await fn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

test('202 repeats the update hook until the device reports the commit; 200 ends one at once', async () => {
  const s = await store();
  const seen: string[] = [];
  let answer = 202;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      seen.push(`${req.method} ${req.url} ${body}`);
      res.writeHead(answer).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  let reported: string | null = null;
  const runner = new HookRunner({
    store: s,
    address: () => `http://0.0.0.0:${(server.address() as AddressInfo).port}/v1/devices/`,
    reportedCommit: async () => reported,
    log: quiet,
    backoff: { baseMs: 20, maxMs: 40 },
  });
  cleanups.push(() => runner.stop());
  const send = { commit: 'c2', environment: { LED: 'on' } };
  await s.addHook({ uuid: UUID, kind: 'update', body: { appId: 5, send }, attempts: 0, dueAt: 0 });
  runner.kick();
  await until('three attempts', async () => (seen.length >= 3 ? true : undefined));
  assert.equal(seen[0], `PUT /v1/devices/${UUID} ${JSON.stringify(send)}`);
  const owed = await s.hooks();
  assert.equal(owed.length, 1, 'still owed, on disk');
  assert.ok(owed[0]!.attempts >= 2);
  reported = 'c2';
  await until('the hook ended', async () => ((await s.hooks()).length === 0 ? true : undefined));

  answer = 200;
  seen.length = 0;
  await s.addHook({ uuid: UUID, kind: 'delete', body: { appId: 5 }, attempts: 0, dueAt: 0 });
  runner.kick();
  await until('the DELETE hook ended', async () => ((await s.hooks()).length === 0 ? true : undefined));
  assert.deepEqual(seen, [`DELETE /v1/devices/${UUID} `]);
});

test('a hook address that is no URL is retried with backoff, like a hook server that does not answer', async () => {
  const s = await store();
  const runner = new HookRunner({ store: s, address: () => 'not a url', reportedCommit: async () => null, log: quiet, backoff: { baseMs: 20, maxMs: 40 } });
  cleanups.push(() => runner.stop());
  await s.addHook({ uuid: UUID, kind: 'restart', body: { appId: 5 }, attempts: 0, dueAt: 0 });
  runner.kick();
  const [h] = await until('a second attempt', async () => {
    const hooks = await s.hooks();
    return hooks[0] && hooks[0].attempts >= 2 ? hooks : undefined;
  });
  assert.equal(h!.kind, 'restart');
});

test('a hook queued anew after an attempt failed on the gateway side goes at once, not after the hold-off', { timeout: 30_000 }, async () => {
  const s = await store();
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      seen.push(body);
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  let failed!: () => void;
  const held = new Promise<void>((r) => (failed = r));
  let broken = true;
  const runner = new HookRunner({
    store: s,
    address: () => `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/devices/`,
    // the first attempt fails after the call (the agent's database, say): it is held off for the longest backoff
    reportedCommit: async () => {
      if (broken) throw new Error('database busy');
      return null;
    },
    log: { info: () => undefined, logger: { warn: (_f: object, m: string) => void (m.includes('not sent') && failed()) } },
    backoff: { baseMs: 600_000, maxMs: 600_000 },
  });
  cleanups.push(() => runner.stop());
  await s.addHook({ uuid: UUID, kind: 'update', body: { appId: 5, send: { commit: 'c1', environment: {} } }, attempts: 0, dueAt: 1 });
  runner.kick();
  await held;
  broken = false;
  // a new target: the same device's update hook, queued anew
  await s.addHook({ uuid: UUID, kind: 'update', body: { appId: 5, send: { commit: 'c2', environment: {} } }, attempts: 0, dueAt: 2 });
  runner.kick();
  await until('the new hook sent', async () => (seen.length >= 2 ? true : undefined));
  assert.deepEqual(
    seen.map((b) => (JSON.parse(b) as { commit: string }).commit),
    ['c1', 'c2'],
  );
});
