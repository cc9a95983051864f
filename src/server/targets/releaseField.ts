// What the parts of the release → target conversion share: refusals that name the release's field,
// and Salt's list forms.
import { ValidationError } from '../../shared/errors.js';

export function fail(field: string, reason: string): never {
  throw new ValidationError(field, reason, 'release');
}

/** Salt takes a list or a comma-separated string. */
export const list = (v: string[] | string): string[] =>
  Array.isArray(v)
    ? v.map((s) => s.trim())
    : v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);

/** A key as a JSON pointer segment. */
export const escapePointer = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');
