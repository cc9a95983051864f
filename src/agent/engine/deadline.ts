// Every Engine API call has a deadline: an engine that stops answering (it happens) must make a
// step fail and be retried, never hang the agent's loop.
export const ENGINE_CALL_TIMEOUT_MS = 60_000;

/** Options fragment for dockerode calls: `{ ...deadline() }` or `{ ...deadline(ms) }`. */
export const deadline = (ms = ENGINE_CALL_TIMEOUT_MS) => ({ abortSignal: AbortSignal.timeout(ms) });

/** Names an engine timeout for what it is, instead of the AbortSignal's "operation was aborted". */
export function engineErrorMessage(err: unknown): string {
  const e = err as Error;
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') return 'the Docker Engine did not answer in time (it may be hung)';
  return e?.message ?? String(err);
}
