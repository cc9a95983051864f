// What the device API lets apps ask of the device (reboot, shutdown, blink, purge and restart an
// app), as remote commands through the same actions, and applying the target now (AutoPi's
// `state.sls docker.release`). Each answers true once done; an app holding its update lock makes
// the action fail unless `force=True`, which an app's key may give for its own app only.
import { ValidationError } from '../../shared/errors.js';
import type { ExecuteCommand } from '../../shared/executeCommand.js';
import type { CommandPort } from '../api/devicePort.js';
import { assertAppAccess, coversApp, forceFor, type KeyScope } from '../api/keyScope.js';
import type { PowerAction } from '../host/host.js';
import { bind } from './params.js';

const ForceParam = { name: 'force', type: 'boolean' } as const;
const AppParams = [{ name: 'app_id', type: 'integer', required: true }, ForceParam] as const;

export const power = (action: PowerAction) => async (device: CommandPort, call: ExecuteCommand, scope: KeyScope) => {
  const { force } = bind(call, [ForceParam]);
  await device.actions.power(action, forceFor(scope, force === true));
  return true;
};

export async function blink(device: CommandPort, call: ExecuteCommand) {
  bind(call, []);
  device.host.blink();
  return true;
}

export async function purgeApp(device: CommandPort, call: ExecuteCommand, scope: KeyScope) {
  const a = bind(call, AppParams);
  assertAppAccess(scope, a.app_id!);
  await device.actions.purgeApp(a.app_id!, a.force === true);
  return true;
}

export async function restartApp(device: CommandPort, call: ExecuteCommand, scope: KeyScope) {
  const a = bind(call, AppParams);
  assertAppAccess(scope, a.app_id!);
  await device.actions.restartApp(a.app_id!, a.force === true);
  return true;
}

/** `state.sls docker.release`: the only state this device has. */
export async function stateSls(device: CommandPort, call: ExecuteCommand, scope: KeyScope) {
  const { mods, force } = bind(call, [{ name: 'mods', type: 'string', required: true }, ForceParam]);
  if (mods !== 'docker.release') throw new ValidationError('/arg/0', `no state ${mods} on this device (it has docker.release)`, `arguments of ${call.command}`);
  return applyTarget(device, force === true, scope);
}

/**
 * `docker.release [force=True]`: apply the target now (the device applies a new release as soon as
 * it has it; this re-checks and repairs, `force` overriding update locks until it converges). Done
 * when the apply is: the device runs its target, or waits (a download under way, a lock held).
 */
export async function release(device: CommandPort, call: ExecuteCommand, scope: KeyScope) {
  const { force } = bind(call, [ForceParam]);
  return applyTarget(device, force === true, scope);
}

/** An app's key sees its own app only (the wait reasons name every app: the device key's). */
async function applyTarget(device: CommandPort, force: boolean, scope: KeyScope) {
  device.requestUpdate(force, scope);
  const outcome = await device.applyNow();
  const apps = Object.values(await device.currentState()).filter((a) => coversApp(scope, a.appId));
  const waits = scope.kind === 'device' ? `: ${device.waitReasons().join('; ')}` : '';
  return {
    result: true,
    converged: outcome === 'converged',
    comment: outcome === 'converged' ? 'the device runs its target' : `applying${waits}`,
    apps: Object.fromEntries(apps.map((a) => [a.appId, { release: a.releaseId, target_release: a.targetReleaseId, update_status: a.updateStatus }])),
  };
}
