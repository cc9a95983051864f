// The server's one mapping from typed errors to HTTP status codes and bodies.
import type { FastifyError, FastifyReply } from 'fastify';
import { BosunError, clientErrorStatus, ValidationError } from '../shared/errors.js';

/** A refusal with its own status, whose message is for the caller: a 413 (too large), a 503 (not now). */
export class StatusError extends BosunError {
  override name = 'StatusError';
  constructor(
    readonly statusCode: 413 | 503,
    message: string,
  ) {
    super(message);
  }
}

export const statusOf = (err: unknown): number => (err instanceof StatusError ? err.statusCode : (clientErrorStatus(err) ?? 500));

/** `{"detail": …}` as the AutoPi API answers errors; `field` names the offending input where known. */
export function sendError(err: Error, reply: FastifyReply, log: (err: Error) => void): void {
  const status = statusOf(err);
  if (status >= 500) log(err);
  let detail = status >= 500 && !(err instanceof StatusError) ? 'internal error' : err.message;
  let field = err instanceof ValidationError ? err.field : undefined;
  const first = (err as FastifyError).validation?.[0];
  if (first) {
    const extra = first.keyword === 'additionalProperties' ? (first.params as { additionalProperty?: string }).additionalProperty : undefined;
    field = extra ? `${first.instancePath}/${extra}` : first.instancePath;
    if (extra) detail = `${(err as FastifyError).validationContext ?? 'body'}${field}: unknown field`;
  }
  reply.code(status).send({ detail, ...(field ? { field } : {}) });
}
