// Where the CLI keeps the server and token `bosun login` saved: `<config dir>/bosun/config.json`
// (`$XDG_CONFIG_HOME`, else `~/.config`; `%APPDATA%` on Windows), mode 0600 in a 0700 folder,
// written atomically. `BOSUN_SERVER` and `BOSUN_TOKEN` override what it holds.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CliError, EXIT } from './errors.js';

export interface Login {
  server: string;
  token: string;
}

export function configFile(): string {
  const base = process.env.XDG_CONFIG_HOME || (process.platform === 'win32' && process.env.APPDATA ? process.env.APPDATA : path.join(os.homedir(), '.config'));
  return path.join(base, 'bosun', 'config.json');
}

function readSaved(): Partial<Login> {
  let text: string;
  try {
    text = fs.readFileSync(configFile(), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new CliError(`cannot read ${configFile()}: ${(err as Error).message}`, EXIT.FAILURE);
  }
  try {
    const saved = JSON.parse(text) as Partial<Login>;
    return { ...(typeof saved.server === 'string' ? { server: saved.server } : {}), ...(typeof saved.token === 'string' ? { token: saved.token } : {}) };
  } catch {
    throw new CliError(`${configFile()} is not valid JSON: run "bosun login" again`, EXIT.FAILURE);
  }
}

/** The server and token to use: the environment's, else the saved ones. */
export function currentLogin(): Login {
  const saved = process.env.BOSUN_SERVER && process.env.BOSUN_TOKEN ? {} : readSaved();
  const server = process.env.BOSUN_SERVER || saved.server;
  const token = process.env.BOSUN_TOKEN || saved.token;
  if (!server) throw new CliError('no server: run "bosun login --server <url>" (or set BOSUN_SERVER)', EXIT.AUTH);
  if (!token) throw new CliError(`no API token for ${server}: run "bosun login --server ${server}" (or set BOSUN_TOKEN)`, EXIT.AUTH);
  return { server: normaliseServer(server), token };
}

export function normaliseServer(url: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? url : `http://${url}`;
  if (!URL.canParse(withScheme)) throw new CliError(`"${url}" is not a URL: give one like http://127.0.0.1:8000`, EXIT.USAGE);
  const u = new URL(withScheme);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new CliError(`"${url}": the server's URL is http:// or https://`, EXIT.USAGE);
  return u.toString().replace(/\/+$/, '');
}

/** Saved with mode 0600 (a new file, renamed over the old one: never a moment world-readable). */
export function saveLogin(login: Login): string {
  const file = configFile();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(login, null, 2)}\n`, { mode: 0o600, flag: 'w' });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
  return file;
}
