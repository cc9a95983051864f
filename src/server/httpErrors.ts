// The server's one mapping from typed errors to HTTP status codes and bodies.
import type { FastifyError, FastifyReply } from 'fastify';
import { ConflictError, NotFoundError, UnauthorizedError, ValidationError } from '../shared/errors.js';

export function statusOf(err: unknown): number {
  if (err instanceof ValidationError) return 400;
  if (err instanceof UnauthorizedError) return 401;
  if (err instanceof NotFoundError) return 404;
  if (err instanceof ConflictError) return 409;
  const fe = err as FastifyError;
  if (fe.validation) return 400;
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) return fe.statusCode;
  return 500;
}

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
