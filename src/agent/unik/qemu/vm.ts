// One qemu process per running instance: launched detached with its output in files (nothing
// inherited), found again by pid + command line after an agent restart, and stopped gracefully
// (a line on the init's control port), then with QMP `quit`, then killed.
import { spawn } from 'node:child_process';
import net from 'node:net';
import fs, { fd } from '../../../shared/fsAsync.js';
import { UnikError } from '../provider.js';
import { consoleFile, controlSocket, processName, QEMU, qemuArgs, qmpSocket, type VmSpec } from './qemuArgs.js';
import { clearConsole, size, tailRaw } from './console.js';
import { qmpCommand } from './qmp.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const GRACE_MS = 10_000;
const QUIT_MS = 5_000;
const READY_MS = 20_000;
/** a Unix socket path is at most 107 bytes */
const MAX_SOCKET_PATH = 107;

/** Whether pid is this instance's qemu (alive, not a zombie, with the instance's -name). */
export async function isInstanceVm(pid: number | undefined, id: string): Promise<boolean> {
  if (!pid) return false;
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
    if (/^\d+ \(.*\) Z/s.test(stat)) return false;
    const argv = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    const at = argv.indexOf('-name');
    return at >= 0 && argv[at + 1] === processName(id);
  } catch {
    return false;
  }
}

export type Launch = { pid: number } | { hung: string };

/**
 * Starts qemu and waits until it is up: its QMP socket exists, and with `firstOutputMs` (a KVM try),
 * also a first console byte within that time, else it is killed and `{hung}` returned.
 */
export async function launch(spec: VmSpec, firstOutputMs?: number): Promise<Launch> {
  if (qmpSocket(spec.dir).length > MAX_SOCKET_PATH) throw new UnikError('failed', `the data dir's path is too long for qemu's sockets: ${qmpSocket(spec.dir)}`);
  for (const f of [qmpSocket(spec.dir), controlSocket(spec.dir)]) await fs.rm(f, { force: true });
  await clearConsole(consoleFile(spec.dir));
  const logFile = `${spec.dir}/qemu.log`;
  const out = await fd.open(logFile, 'w', 0o600);
  let exited: string | undefined;
  let child: ReturnType<typeof spawn>;
  try {
    child = spawn(QEMU, qemuArgs(spec), { cwd: spec.dir, detached: true, stdio: ['ignore', out, out] });
    await new Promise<void>((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  } finally {
    await fd.close(out);
  }
  child.once('exit', (code, signal) => (exited = signal ?? `status ${code}`));
  child.unref();
  const pid = child.pid!;
  const started = Date.now();
  // the QMP socket exists early; an answer on it means qemu got through its set-up (port forwards too)
  const up = async () =>
    (await exists(qmpSocket(spec.dir))) &&
    (await qmpCommand(qmpSocket(spec.dir), 'query-status', 2000).then(
      () => true,
      () => false,
    ));
  const want = async () => (await up()) && (!firstOutputMs || (await size(consoleFile(spec.dir))) > 0);
  while (!(await want())) {
    if (exited) throw startFailure(exited, await tail(logFile));
    if (firstOutputMs && Date.now() - started > firstOutputMs) {
      await kill(pid, spec.id);
      return { hung: `no console output in ${firstOutputMs} ms` };
    }
    if (Date.now() - started > READY_MS) {
      await kill(pid, spec.id);
      throw new UnikError('failed', `qemu did not come up in ${READY_MS / 1000} s: ${await tail(logFile)}`);
    }
    await sleep(50);
  }
  return { pid };
}

function startFailure(how: string, said: string): UnikError {
  if (/host forwarding rule/.test(said)) return new UnikError('conflict', `a forwarded port is in use: ${said}`);
  return new UnikError('failed', `qemu exited (${how}) at start: ${said}`);
}

/** Graceful first: the init stops the app and powers off; then QMP quit; then SIGKILL. */
export async function stopVm(pid: number, id: string, dir: string): Promise<void> {
  if (!(await isInstanceVm(pid, id))) return;
  if ((await askInit(controlSocket(dir))) && (await gone(pid, id, GRACE_MS))) return;
  await qmpCommand(qmpSocket(dir), 'quit').catch(() => undefined);
  if (await gone(pid, id, QUIT_MS)) return;
  await kill(pid, id);
}

async function kill(pid: number, id: string): Promise<void> {
  if (!(await isInstanceVm(pid, id))) return;
  process.kill(pid, 'SIGKILL');
  if (!(await gone(pid, id, QUIT_MS))) throw new UnikError('failed', `qemu ${pid} survived SIGKILL`);
}

function askInit(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const conn = net.connect(socket, () => conn.end('stop\n', () => resolve(true)));
    conn.setTimeout(2000, () => (conn.destroy(), resolve(false)));
    conn.on('error', () => resolve(false));
  });
}

async function gone(pid: number, id: string, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (!(await isInstanceVm(pid, id))) return true;
  return !(await isInstanceVm(pid, id));
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

/** The last lines qemu printed (its own errors). */
async function tail(file: string): Promise<string> {
  return (await tailRaw(file, 2048)).trim();
}
