// What the device API lets apps ask of the device (reboot, shutdown, blink, purge and restart an
// app), as remote commands through the same actions, and applying the target now (AutoPi's
// `state.sls docker.release`). Each answers true once done; an app holding its update lock makes
// the action fail unless `force=True`, which an app's key may give for its own app only.
import { ValidationError } from '../../shared/errors.js';
import type { ExecuteCommand } from '../../shared/executeCommand.js';
import type { Agent } from '../agent.js';
import { assertAppAccess, coversApp, forceFor, type KeyScope } from '../api/keyScope.js';
import type { PowerAction } from '../host/host.js';
import { bind } from './params.js';

const ForceParam = { name: 'force', type: 'boolean' } as const;
const AppParams = [{ name: 'app_id', type: 'integer', required: true }, ForceParam] as const;

export const power = (action: PowerAction) => async (agent: Agent, call: ExecuteCommand, scope: KeyScope) => {
  const { force } = bind(call, [ForceParam]);
  await agent.actions.power(action, forceFor(scope, force === true));
  return true;
};

export async function blink(agent: Agent, call: ExecuteCommand) {
  bind(call, []);
  agent.host.blink();
  return true;
}

export async function purgeApp(agent: Agent, call: ExecuteCommand, scope: KeyScope) {
  const a = bind(call, AppParams);
  assertAppAccess(scope, a.app_id!);
  await agent.actions.purgeApp(a.app_id!, a.force === true);
  return true;
}

export async function restartApp(agent: Agent, call: ExecuteCommand, scope: KeyScope) {
  const a = bind(call, AppParams);
  assertAppAccess(scope, a.app_id!);
  await agent.actions.restartApp(a.app_id!, a.force === true);
  return true;
}

/** `state.sls docker.release`: the only state this device has. */
export async function stateSls(agent: Agent, call: ExecuteCommand, scope: KeyScope) {
  const { mods, force } = bind(call, [{ name: 'mods', type: 'string', required: true }, ForceParam]);
  if (mods !== 'docker.release') throw new ValidationError('/arg/0', `no state ${mods} on this device (it has docker.release)`, `arguments of ${call.command}`);
  return applyTarget(agent, force === true, scope);
}

/**
 * `docker.release [force=True]`: apply the target now (the device applies a new release as soon as
 * it has it; this re-checks and repairs, `force` overriding update locks until it converges). Done
 * when the apply is: the device runs its target, or waits (a download under way, a lock held).
 */
export async function release(agent: Agent, call: ExecuteCommand, scope: KeyScope) {
  const { force } = bind(call, [ForceParam]);
  return applyTarget(agent, force === true, scope);
}

/** An app's key sees its own app only (the wait reasons name every app: the device key's). */
async function applyTarget(agent: Agent, force: boolean, scope: KeyScope) {
  agent.requestUpdate(force, scope);
  const outcome = await agent.applyNow();
  const apps = Object.values(await agent.currentState()).filter((a) => coversApp(scope, a.appId));
  const waits = scope.kind === 'device' ? `: ${agent.reconciler.status.waitReasons.join('; ')}` : '';
  return {
    result: true,
    converged: outcome === 'converged',
    comment: outcome === 'converged' ? 'the device runs its target' : `applying${waits}`,
    apps: Object.fromEntries(apps.map((a) => [a.appId, { release: a.releaseId, target_release: a.targetReleaseId, update_status: a.updateStatus }])),
  };
}
