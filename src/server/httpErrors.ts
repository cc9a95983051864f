// The server's one mapping from typed errors to HTTP status codes and bodies.
import type { FastifyError, FastifyReply } from 'fastify';
import { clientErrorStatus, ValidationError } from '../shared/errors.js';

export const statusOf = (err: unknown): number => clientErrorStatus(err) ?? 500;

/** `{"detail": …}` as the AutoPi API answers errors; `field` names the offending input where known. */
export function sendError(err: Error, reply: FastifyReply, log: (err: Error) => void): void {
  const status = statusOf(err);
  if (status >= 500) log(err);
  let detail = status >= 500 ? 'internal error' : err.message;
  let field = err instanceof ValidationError ? err.field : undefined;
  const first = (err as FastifyError).validation?.[0];
  if (first) {
    const extra = first.keyword === 'additionalProperties' ? (first.params as { additionalProperty?: string }).additionalProperty : undefined;
    field = extra ? `${first.instancePath}/${extra}` : first.instancePath;
    if (extra) detail = `${(err as FastifyError).validationContext ?? 'body'}${field}: unknown field`;
  }
  reply.code(status).send({ detail, ...(field ? { field } : {}) });
}
