// What a key may touch, for the device API and the local command API alike (the rule table is in
// the README's security section): the device key (also local mode's keyless callers and the control
// plane's relayed calls) reaches every app; an app's key reaches its own app only, and acts on the
// device only where balena apps do (reboot, shutdown, update, blink, host config) — its `force`
// overrides its own app's update lock, never another app's.
import { UnauthorizedError } from '../../shared/errors.js';
import type { KeyScope } from './apiKeys.js';

export type { KeyScope };

export const DEVICE_SCOPE: KeyScope = { kind: 'device' };

/** Whether the key reaches this app. */
export const coversApp = (scope: KeyScope, appId: number): boolean => scope.kind === 'device' || scope.appId === appId;

/** An app's key acts on its own app only (balena answers 401 for others). */
export function assertAppAccess(scope: KeyScope, appId: number): void {
  if (!coversApp(scope, appId)) throw new UnauthorizedError(`this API key is not allowed to act on app ${appId}`);
}

/** Routes and commands that reach every app (their secrets, their output) need the device key. */
export function assertDeviceScope(scope: KeyScope, what: string): void {
  if (scope.kind !== 'device') throw new UnauthorizedError(`an app's API key is not allowed here: ${what}; this needs the device key`);
}

/** Whose update locks a `force` from this key overrides: its own app's, or every app's for the device key. */
export const forceFor =
  (scope: KeyScope, force: boolean) =>
  (appId: number): boolean =>
    force && coversApp(scope, appId);
