// The value shapes a compose file's keys take, each refused by its path when it is another
// (`services.web.ports[1]`: a string, not …), and how those paths are written.
import { ValidationError } from '../../shared/errors.js';

export type Obj = Record<string, unknown>;

export function fail(path: string, reason: string): never {
  throw new ValidationError(path, reason, 'compose file');
}

/** `services.web` + `ports` → `services.web.ports`; a key that is no identifier is quoted. */
export const key = (path: string, k: string | number) =>
  typeof k === 'number' ? `${path}[${k}]` : /^[A-Za-z_][A-Za-z0-9_.-]*$/.test(k) ? `${path}.${k}` : `${path}[${JSON.stringify(k)}]`;

export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function str(v: unknown, at: string): string {
  if (typeof v !== 'string') fail(at, `a string, not ${JSON.stringify(v)}`);
  return v;
}
export function bool(v: unknown, at: string): boolean {
  if (typeof v !== 'boolean') fail(at, 'true or false');
  return v;
}
export function list(v: unknown, at: string): unknown[] {
  if (!Array.isArray(v)) fail(at, 'a list');
  return v;
}
export function strings(v: unknown, at: string): string[] {
  return list(v, at).map((s, i) => str(s, key(at, i)));
}
/** Scalars as compose takes them in mappings: numbers and booleans become their text. */
export function scalar(v: unknown, at: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return fail(at, 'a string, number or boolean');
}
export function stringMap(v: unknown, at: string): Record<string, string> {
  if (!isObj(v)) fail(at, 'a mapping or a list of KEY=VALUE');
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, x === null ? '' : scalar(x, key(at, k))]));
}
