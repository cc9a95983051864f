// `npm start` as a user runs it, for the tests of the first hour: in its own data dir, on free ports
// (BOSUN_SERVER_PORT, BOSUN_API_PORT), its agent in this test run's engine scope. Never port 48484
// (the balena CLI test's).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { ENGINE_SCOPE, freePort, removeApps, waitFor } from './harness.js';

export interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** npm has exited and its output is closed: whatever its children wrote last has been read. Read the
   * output after this, not after `exited` (the exit can be seen before the last lines arrive). */
  closed: Promise<void>;
  url: string;
  apiPort: number;
  env: Record<string, string>;
}

export async function npmStart(t: TestContext, dataDir: string, env: Record<string, string> = {}): Promise<Started> {
  const port = await freePort();
  const apiPort = await freePort();
  const all = {
    BOSUN_DATA_DIR: dataDir,
    BOSUN_SERVER_PORT: String(port),
    BOSUN_API_PORT: String(apiPort),
    BOSUN_UNIK_PORT: String(await freePort()),
    BOSUN_ENGINE_SCOPE: ENGINE_SCOPE,
    ...env,
  };
  // its own process group, so that a signal reaches only the process it is sent to, as `kill <pid>` does
  const child = spawn('npm', ['start'], { env: { ...process.env, ...all }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let text = '';
  for (const s of [child.stdout!, child.stderr!]) s.on('data', (b: Buffer) => (text += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  t.after(async () => {
    const left = descendants(child.pid!);
    if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    for (const pid of left) kill(pid);
    await exited;
    await removeApps([1]); // the project "hello" npm start creates on a fresh server: app 1, in this run's scope
  });
  return { child, output: () => text, exited, closed, url: `http://127.0.0.1:${port}`, apiPort, env: all };
}

/** Waits for the agent's start line, after "Bosun is up". */
export const untilUp = (s: Started) =>
  waitFor('npm start: the agent up', async () => s.output().includes('Following the control plane at'), 180_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${s.output()}`);
  });

const kill = (pid: number) => {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {}
};

/** Every live process below `root` (by parent pid, from /proc). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length) for (const c of children.get(queue.shift()!) ?? []) queue.push(c), found.push(c);
  return found;
}

/** The process's command line, or undefined once it is gone (a zombie counts as gone). */
export function commandOf(pid: number): string | undefined {
  try {
    if (/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))) return undefined;
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/** True when the port can be bound (nothing listens on it any more). */
export const portFree = (port: number, host = '0.0.0.0') =>
  new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });

export const assertGone = (pids: number[], what: string) =>
  assert.deepEqual(
    pids.map((p) => [p, commandOf(p)]).filter(([, c]) => c !== undefined),
    [],
    `${what}: no process npm start started is left`,
  );
