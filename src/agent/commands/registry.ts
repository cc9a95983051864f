// The module commands the agent runs, for the control plane's execute API (over the device link)
// and the local command API alike: one registry, command name → handler. Loaded on first use (the
// agent imports this module dynamically). The control plane's commands run with the device's scope;
// the local command API's with the caller's key (an app's key: its own app, as on the device API).
import { ValidationError } from '../../shared/errors.js';
import { ExecuteCommandSchema, type CommandResult, type ExecuteCommand } from '../../shared/executeCommand.js';
import { assertValid } from '../../shared/validate.js';
import type { Agent } from '../agent.js';
import { agentPort } from '../api/agentPort.js';
import type { CommandPort } from '../api/devicePort.js';
import { DEVICE_SCOPE, type KeyScope } from '../api/keyScope.js';
import { engineErrorMessage } from '../engine/deadline.js';
import * as docker from './dockerCommands.js';
import { grainsItems } from './grains.js';
import { bind } from './params.js';
import { blink, power, purgeApp, release, restartApp, stateSls } from './supervisorCommands.js';

type Handler = (device: CommandPort, call: ExecuteCommand, scope: KeyScope) => Promise<unknown>;

/** A result must fit in one request to the server (its device link takes at most 2 MiB). */
const MAX_RESULT_BYTES = 2 * 1024 * 1024 - 1024;

const COMMANDS: Record<string, Handler> = {
  'test.ping': async (_device, call) => {
    bind(call, []);
    return true;
  },
  'grains.items': grainsItems,
  'docker.ps': docker.ps,
  'docker.logs': docker.logs,
  'docker.restart': docker.restart,
  'docker.stop': docker.stop,
  'docker.start': docker.start,
  'docker.release': release,
  'state.sls': stateSls,
  // its own chunk: re2js costs 2 to 4 MB of RSS once loaded, only for an agent that ran last_logs
  'minionutil.last_logs': async (...a) => (await import('./lastLogs.js')).lastLogs(...a),
  'supervisor.reboot': power('reboot'),
  'supervisor.shutdown': power('shutdown'),
  'supervisor.blink': blink,
  'supervisor.purge': purgeApp,
  'supervisor.restart': restartApp,
};

/**
 * Runs a command and gives its return value; a typed error when it cannot run (an unknown
 * command or argument, a container that is not the agent's, an app holding its update lock).
 */
export async function runCommand(device: CommandPort, call: ExecuteCommand, scope: KeyScope): Promise<unknown> {
  const handler = Object.hasOwn(COMMANDS, call.command) ? COMMANDS[call.command] : undefined;
  if (!handler) throw new ValidationError('/command', `'${call.command}' is not available; this device runs ${Object.keys(COMMANDS).join(', ')}`, 'command');
  return handler(device, call, scope);
}

/**
 * A command from the control plane, whatever its payload holds: what it came to, as a Salt job
 * returns it (a failure's return is its message, retcode 1); never a throw. The agent calls this
 * with itself: the commands get its port.
 */
export async function commandResult(agent: Agent, payload: unknown): Promise<CommandResult> {
  const device = agentPort(agent);
  try {
    assertValid(ExecuteCommandSchema, payload, 'command');
    device.log.logger.info({ command: payload.command }, 'running a remote command');
    const result = { return: (await runCommand(device, payload, DEVICE_SCOPE)) ?? null, success: true, retcode: 0 };
    const size = Buffer.byteLength(JSON.stringify(result));
    if (size > MAX_RESULT_BYTES)
      return { return: `the result is ${size} bytes, more than a device may send (2 MiB): ask for less`, success: false, retcode: 1 };
    return result;
  } catch (err) {
    return { return: engineErrorMessage(err), success: false, retcode: 1 };
  }
}
