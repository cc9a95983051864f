// A module command as AutoPi's execute endpoints take it (Salt's `module.function` with positional
// and keyword arguments): the same schema for the control plane's execute API, the device link and
// the device's local command API.
import { Type, type Static } from '@sinclair/typebox';
import type { ExecuteResult } from './deviceLink.js';

export const COMMAND_NAME = '^[A-Za-z_][A-Za-z0-9_]*\\.[A-Za-z_][A-Za-z0-9_]*$';

export const ExecuteCommandFields = {
  command: Type.String({ pattern: COMMAND_NAME, maxLength: 200, description: '`module.function`, e.g. `docker.logs`' }),
  arg: Type.Optional(Type.Array(Type.Unknown(), { maxItems: 100, description: 'positional arguments' })),
  kwarg: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'keyword arguments' })),
};
export const ExecuteCommandSchema = Type.Object(ExecuteCommandFields, { additionalProperties: false });
export type ExecuteCommand = Static<typeof ExecuteCommandSchema>;

/** What a command came to, as a Salt job returns it (deviceLink.ts: ExecuteResultSchema). */
export type CommandResult = ExecuteResult;
