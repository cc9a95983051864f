// A compose file as the CLI sends it: its text, and the content of each env_file it names (read
// relative to the compose file's folder, keyed by the path as written), for the server to convert.
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { CliError, EXIT } from './errors.js';

const MAX_BYTES = 256 * 1024;

export interface ComposeUpload {
  compose: string;
  env_files?: Record<string, string>;
}

function readText(file: string, what: string): string {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new CliError(`cannot read ${what} ${file}: no such file`, EXIT.USAGE);
  }
  if (!stat.isFile()) throw new CliError(`${what} ${file} is not a file`, EXIT.USAGE);
  if (stat.size > MAX_BYTES) throw new CliError(`${what} ${file} is larger than ${MAX_BYTES / 1024} KiB`, EXIT.USAGE);
  return fs.readFileSync(file, 'utf8');
}

/** The env_file paths the services name, and whether each is required (the server checks everything else). */
function envFilePaths(doc: unknown): Map<string, boolean> {
  const services = (doc as { services?: unknown } | null)?.services;
  const paths = new Map<string, boolean>();
  if (typeof services !== 'object' || services === null) return paths;
  for (const svc of Object.values(services)) {
    const ef = (svc as { env_file?: unknown } | null)?.env_file;
    for (const f of typeof ef === 'string' ? [ef] : Array.isArray(ef) ? ef : []) {
      const long = typeof f === 'object' && f !== null ? (f as { path?: unknown; required?: unknown }) : undefined;
      const p = long ? long.path : f;
      if (typeof p === 'string') paths.set(p, (paths.get(p) ?? false) || long?.required !== false);
    }
  }
  return paths;
}

export function readCompose(file: string): ComposeUpload {
  const compose = readText(file, 'compose file');
  let doc: unknown;
  try {
    doc = parse(compose, { maxAliasCount: 100 });
  } catch {
    return { compose }; // the server says what is wrong with it, naming the place
  }
  const env: Record<string, string> = {};
  for (const [p, required] of envFilePaths(doc)) {
    const full = path.resolve(path.dirname(file), p);
    if (required || fs.existsSync(full)) env[p] = readText(full, 'env_file');
  }
  return { compose, ...(Object.keys(env).length ? { env_files: env } : {}) };
}
