// The server side's handle on the simulated fleet: the child process (the entry file again, with
// BENCH_DEVICELINK_ROLE=fleet) and calls to its commands over IPC, each with a deadline.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sleep } from '../lib.js';

/** the bench's entry file, which runs the fleet when BENCH_DEVICELINK_ROLE=fleet */
const ENTRY = new URL('../deviceLink.bench.ts', import.meta.url);

export class FleetProcess {
  private nextId = 1;
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private constructor(readonly child: ChildProcess) {
    child.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const c = this.calls.get(m.id);
      if (!c) return;
      this.calls.delete(m.id);
      if (m.error) c.reject(new Error(`fleet: ${m.error}`));
      else c.resolve(m.result);
    });
    child.on('exit', (code, signal) => {
      for (const c of this.calls.values()) c.reject(new Error(`the fleet process exited (${signal ?? code})`));
      this.calls.clear();
    });
  }

  static start(): FleetProcess {
    const child = fork(fileURLToPath(ENTRY), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, BENCH_DEVICELINK_ROLE: 'fleet' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new FleetProcess(child);
  }

  call<T>(cmd: string, args: unknown, timeoutMs = 120_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.calls.delete(id);
        reject(new Error(`fleet: ${cmd} took more than ${timeoutMs} ms`));
      }, timeoutMs);
      this.calls.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ id, cmd, args });
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()));
    await this.call('close', {}, 10_000).catch(() => undefined);
    this.child.disconnect?.();
    await Promise.race([exited, sleep(3000)]);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
