// The agent's health heuristics, served by `GET /v1/healthy` (and usable as a container or systemd
// watchdog check): the engine answers, and the reconcile loop is neither stuck nor dead.
import type Docker from 'dockerode';
import { engineErrorMessage, withDeadline } from './engine/deadline.js';
import type { Reconciler } from './reconciler/reconciler.js';

/** An apply that runs this long is stuck: every engine call has a deadline and pulls run apart. */
const STUCK_APPLY_MS = 15 * 60_000;
const ENGINE_PING_MS = 5_000;

/** Why the agent is not healthy; empty when it is. */
export async function healthProblems(
  docker: Docker,
  status: Reconciler['status'],
  intervalMs: number,
  hasTarget: boolean,
  now = Date.now(),
): Promise<string[]> {
  const problems: string[] = [];
  try {
    await withDeadline((d) => (docker.ping as (o: object) => Promise<unknown>).call(docker, d), ENGINE_PING_MS);
  } catch (err) {
    problems.push(`the Docker Engine does not answer (${engineErrorMessage(err)})`);
  }
  if (status.applying && now - status.lastApplyStart > STUCK_APPLY_MS) {
    problems.push(`an apply has been running for ${Math.round((now - status.lastApplyStart) / 60_000)} min`);
  }
  const lastRun = Math.max(status.lastApplyEnd, status.lastApplyStart);
  if (hasTarget && !status.applying && lastRun > 0 && now - lastRun > 2 * intervalMs + 60_000) {
    problems.push(`no apply for ${Math.round((now - lastRun) / 1000)} s (the loop should run every ${Math.round(intervalMs / 1000)} s)`);
  }
  return problems;
}
