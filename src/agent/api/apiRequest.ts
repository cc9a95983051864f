// What the device API's route modules share: the fastify instance's type, the caller's key scope
// on each request, and checks of a request's app id. Apart from deviceApi.ts (which registers the
// routes) so that the routes do not import the module that imports them.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { ValidationError } from '../../shared/errors.js';
import type { KeyScope } from './apiKeys.js';
import { assertAppAccess as assertScopeAccess, assertDeviceScope } from './keyScope.js';

export type Api = FastifyInstance<any, any, any, any, TypeBoxTypeProvider>; // eslint-disable-line @typescript-eslint/no-explicit-any

declare module 'fastify' {
  interface FastifyRequest {
    keyScope: KeyScope;
  }
}

/** An app's key acts on its own app only (balena answers 401 for others). */
export function assertAppAccess(req: FastifyRequest, appId: number): void {
  assertScopeAccess(req.keyScope, appId);
}

/** Routes that reach every app's secrets or output: the device key (or local mode) only. */
export function assertDevice(req: FastifyRequest, what: string): void {
  assertDeviceScope(req.keyScope, what);
}

export const parseAppId = (raw: string | number | undefined, field = 'appId'): number => {
  const n = typeof raw === 'number' ? raw : Number(raw);
  if (raw === undefined || raw === '' || !Number.isInteger(n) || n <= 0) throw new ValidationError(field, `Invalid or missing ${field}`, 'request');
  return n;
};
