// Checks of what the API's caller gives the qemu provider (names, args, env, ports, mount points, the
// app's executable): pure, each refusal a bad-request UnikError that names the problem.
import { UnikError } from '../provider.js';

const bad = (message: string) => new UnikError('bad-request', message);

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const MOUNT = /^(\/[A-Za-z0-9_.-]+)+$/;
/** where the init and its busybox live: an image cannot mount over them */
const GUEST_DIRS = ['/app', '/bin', '/bosun', '/dev', '/etc', '/init', '/lib', '/proc', '/run', '/sys'];
const MAX_ARGS = 256;
const MAX_TEXT = 64 * 1024;

/** The env variable that says which ports to forward: `8080` or `18080:8080` (host:guest), comma-separated. */
export const PORTS_ENV = 'BOSUN_PORTS';
const MAX_PORTS = 32;

export interface PortForward {
  host: number;
  guest: number;
}

export function checkName(kind: string, name: string): void {
  if (!NAME.test(name)) throw bad(`invalid ${kind} name ${JSON.stringify(name)}: 1-64 of letters, digits, '_', '.', '-', starting with a letter or digit`);
}

function checkText(what: string, values: readonly string[]): void {
  let total = 0;
  for (const v of values) {
    if (v.includes('\0')) throw bad(`${what} must not contain NUL`);
    total += v.length;
  }
  if (total > MAX_TEXT) throw bad(`${what}: more than ${MAX_TEXT} characters in all`);
}

export function checkArgs(args: readonly string[]): void {
  if (args.length > MAX_ARGS) throw bad(`at most ${MAX_ARGS} args`);
  checkText('args', args);
}

export function checkEnv(env: Readonly<Record<string, string>>): void {
  const entries = Object.entries(env);
  if (entries.length > MAX_ARGS) throw bad(`at most ${MAX_ARGS} env variables`);
  for (const [k, v] of entries) {
    if (!ENV_NAME.test(k)) throw bad(`invalid env variable name ${JSON.stringify(k)}`);
    if (typeof v !== 'string') throw bad(`env variable ${k} must be a string`);
  }
  checkText('env', entries.flat());
}

export function parsePorts(spec: string | undefined): PortForward[] {
  if (spec === undefined || spec.trim() === '') return [];
  const ports = spec.split(',').map((item) => {
    const m = /^\s*(?:(\d{1,5}):)?(\d{1,5})\s*$/.exec(item);
    const guest = Number(m?.[2]);
    const host = m?.[1] === undefined ? guest : Number(m[1]);
    if (!m || !valid(host) || !valid(guest)) throw bad(`invalid ${PORTS_ENV} entry ${JSON.stringify(item)}: PORT or HOSTPORT:GUESTPORT, ports 1-65535`);
    return { host, guest };
  });
  if (ports.length > MAX_PORTS) throw bad(`${PORTS_ENV}: at most ${MAX_PORTS} ports`);
  const hosts = new Set(ports.map((p) => p.host));
  if (hosts.size !== ports.length) throw bad(`${PORTS_ENV}: a host port is given twice`);
  return ports;
}
const valid = (p: number) => Number.isInteger(p) && p >= 1 && p <= 65535;

export function checkMounts(mounts: readonly string[]): void {
  if (mounts.length > 16) throw bad('at most 16 mount points');
  for (const m of mounts) {
    if (!MOUNT.test(m) || m.split('/').some((part) => part === '.' || part === '..')) throw bad(`invalid mount point ${JSON.stringify(m)}: an absolute path`);
    if (GUEST_DIRS.some((d) => m === d || m.startsWith(`${d}/`))) throw bad(`mount point ${m} is where the VM's own files are`);
  }
  if (new Set(mounts).size !== mounts.length) throw bad('a mount point is given twice');
}

export function checkAppFileName(name: string): void {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(name)) throw bad(`invalid executable name ${JSON.stringify(name)}`);
}

/**
 * Whether these first bytes of a file are an x86-64 ELF executable with no interpreter (static).
 * `head` must hold the ELF header and the program headers (they follow it in every linker's output).
 */
export function staticElfProblem(head: Buffer): string | undefined {
  if (head.length < 64 || head.readUInt32BE(0) !== 0x7f454c46) return 'not an ELF executable';
  if (head[4] !== 2 || head[5] !== 1) return 'not a 64-bit little-endian ELF';
  const type = head.readUInt16LE(16);
  if (type !== 2 && type !== 3) return 'not an ELF executable (neither EXEC nor DYN)';
  if (head.readUInt16LE(18) !== 62) return 'not built for x86-64';
  const phoff = Number(head.readBigUInt64LE(32));
  const phentsize = head.readUInt16LE(54);
  const phnum = head.readUInt16LE(56);
  if (phentsize < 56 || phoff + phentsize * phnum > head.length) return 'its program headers are not where an executable has them';
  for (let i = 0; i < phnum; i++) if (head.readUInt32LE(phoff + i * phentsize) === 3) return 'dynamically linked (it has an interpreter): build it static';
  return undefined;
}
