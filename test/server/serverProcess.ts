// The server as an operator runs it: `src/server/main.ts` in a child process, its output (the log)
// collected, the admin token read from it.
import { spawn } from 'node:child_process';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface ServerProcess {
  /** as the server printed it: `http://<address>:<port>` */
  url: string;
  token: string;
  /** stdout and stderr so far */
  output(): string;
  /** SIGTERM, then its exit */
  stop(): Promise<void>;
}

/** `bosun-server <args>` with the environment given (BOSUN_SERVER_* and BOSUN_DATABASE_URL of the test's own are not passed on). */
export async function startServerProcess(t: TestContext, args: string[], env: Record<string, string> = {}): Promise<ServerProcess> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^BOSUN_(SERVER_|DATABASE_URL)/.test(k)));
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server/main.ts', ...args], {
    cwd: repo,
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (output += d.toString('utf8')));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  t.after(stop);
  const started = Date.now();
  for (;;) {
    const m = output.match(/^Bosun server at (\S+) /m);
    if (m) {
      const token = output.match(/admin API token.*:\n\s+(\S+)/)?.[1] ?? '';
      return { url: m[1]!, token, output: () => output, stop };
    }
    if (child.exitCode !== null || Date.now() - started > 60_000) throw new Error(`the server did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
