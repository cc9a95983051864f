// The `bosun` CLI as a user runs it: `bin/bosun.mjs` in a child process with its own config folder
// (none of the test's BOSUN_* environment), and in a pseudo-terminal (tmux) for what it draws.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const bosunBin = path.join(repo, 'bin/bosun.mjs');

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Cli {
  /** its config folder (XDG_CONFIG_HOME) */
  configHome: string;
  env: Record<string, string>;
  run(args: string[], opts?: { env?: Record<string, string>; input?: string }): Promise<Run>;
}

/** A user with an empty config folder. */
export async function cliUser(t: TestContext): Promise<Cli> {
  const configHome = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-cli-'));
  t.after(() => fs.rm(configHome, { recursive: true, force: true }));
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BOSUN_')));
  const env = { ...(inherited as Record<string, string>), XDG_CONFIG_HOME: configHome, NO_COLOR: '1' };
  return {
    configHome,
    env,
    run: (args, opts = {}) =>
      new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [bosunBin, ...args], { cwd: repo, env: { ...env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code, stdout, stderr }));
        child.stdin.end(opts.input ?? '');
      }),
  };
}

const exec = promisify(execFile);

/** A tmux session of its own (own socket), running `bosun <args>` in an 120×30 terminal. */
export async function inTerminal(t: TestContext, cli: Cli, args: string[]) {
  const socket = path.join(cli.configHome, 'tmux.sock');
  const tmux = (...a: string[]) => exec('tmux', ['-S', socket, ...a], { env: cli.env });
  const quoted = [process.execPath, bosunBin, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  // the shell stays after the CLI ends, so its exit code and last screen can be read
  await tmux('new-session', '-d', '-x', '120', '-y', '30', '-s', 'cli', `sh -c "trap true INT; ${quoted.replace(/"/g, '\\"')}; echo EXIT=\\$?; sleep 600"`);
  t.after(() => tmux('kill-server').catch(() => undefined));
  return {
    screen: async () => (await tmux('capture-pane', '-p', '-t', 'cli')).stdout,
    keys: (...keys: string[]) => tmux('send-keys', '-t', 'cli', ...keys),
  };
}

export async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
