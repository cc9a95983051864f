// Validation of outside input against a TypeBox schema; the error names the first offending field.
// TypeBox's error iterator walks the schema directly: a TypeCompiler-compiled checker would keep
// generated code in memory for every schema (about 1 MB of the agent's RSS for the target alone).
import type { Static, TSchema } from '@sinclair/typebox';
import { Errors, ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { ValidationError } from './errors.js';

export function assertValid<T extends TSchema>(schema: T, value: unknown, what: string): asserts value is Static<T> {
  const first = Errors(schema, value).First();
  if (!first) return;
  const e = deepest(first);
  throw new ValidationError(e.path, e.message, what);
}

/**
 * For a value no branch of a union accepts, the error of the branch that got furthest (it names the
 * field that is wrong); when none got further, the union's error, worded by its description if any.
 */
export function deepest(e: ValueError): ValueError {
  if (e.type !== ValueErrorType.Union || !e.errors.length) return e;
  let best = e;
  for (const branch of e.errors) {
    const first = branch.First();
    if (!first) continue;
    const candidate = deepest(first);
    if (candidate.path.length > best.path.length) best = candidate;
  }
  if (best === e && typeof e.schema.description === 'string') return { ...e, message: `expected ${e.schema.description}` };
  return best;
}
