// Every Engine API call has a deadline: an engine that stops answering (it happens) must make a
// step fail and be retried, never hang the agent's loop. The timer is cleared as soon as the call
// settles, so a busy loop leaves no pending timers behind.
export const ENGINE_CALL_TIMEOUT_MS = 60_000;

export interface DeadlineOptions {
  abortSignal: AbortSignal;
}

/** Runs a dockerode call with `{ abortSignal }` that fires after `ms`. */
export async function withDeadline<T>(call: (opts: DeadlineOptions) => Promise<T>, ms = ENGINE_CALL_TIMEOUT_MS): Promise<T> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException('engine call timed out', 'TimeoutError')), ms);
  try {
    return await call({ abortSignal: controller.signal });
  } finally {
    clearTimeout(timer);
  }
}

/** Names an engine timeout for what it is, instead of the AbortSignal's "operation was aborted". */
export function engineErrorMessage(err: unknown): string {
  const e = err as Error;
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') return 'the Docker Engine did not answer in time (it may be hung)';
  return e?.message ?? String(err);
}
