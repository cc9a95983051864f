// Validation of outside input against a TypeBox schema; the error names the first offending field.
// TypeBox's error iterator walks the schema directly: a TypeCompiler-compiled checker would keep
// generated code in memory for every schema (about 1 MB of the agent's RSS for the target alone).
import type { Static, TSchema } from '@sinclair/typebox';
import { Errors } from '@sinclair/typebox/errors';
import { ValidationError } from './errors.js';

export function assertValid<T extends TSchema>(schema: T, value: unknown, what: string): asserts value is Static<T> {
  const first = Errors(schema, value).First();
  if (first) throw new ValidationError(first.path, first.message, what);
}
