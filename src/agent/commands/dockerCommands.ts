// Salt's docker module as AutoPi devices run it, on the containers the agent owns only: another
// container of the engine is never read or touched. A container is named by its service name (the
// service's current container), its container name or its id. An app's key sees and touches its
// own app's containers only: another app's are not found.
import { NotFoundError, ValidationError } from '../../shared/errors.js';
import type { ExecuteCommand } from '../../shared/executeCommand.js';
import type { CommandPort } from '../api/devicePort.js';
import { coversApp, type KeyScope } from '../api/keyScope.js';
import { LABEL } from '../engine/labels.js';
import type { CurrentContainer } from '../reconciler/types.js';
import { bind } from './params.js';

/** docker.logs returns at most this much (the newest lines): a result travels in one request. */
const MAX_LOG_BYTES = 1024 * 1024;

const NameParam = { name: 'name', type: 'string', required: true } as const;
const ForceParam = { name: 'force', type: 'boolean' } as const;

/** `docker.ps [all=False]`: the agent's containers, keyed by id, as the engine lists them. */
export async function ps(device: CommandPort, call: ExecuteCommand, scope: KeyScope): Promise<Record<string, unknown>> {
  const { all } = bind(call, [{ name: 'all', type: 'boolean' }]);
  const owned = (await device.engine.listContainers(all === true)).filter((c) => coversApp(scope, Number(c.Labels[LABEL.appId])));
  return Object.fromEntries(
    owned.map((c) => [
      c.Id,
      {
        Id: c.Id,
        Names: c.Names,
        Image: c.Image,
        Command: c.Command,
        Created: c.Created,
        State: c.State,
        Status: c.Status,
        Ports: c.Ports,
        Service: c.Labels[LABEL.serviceName],
        AppId: Number(c.Labels[LABEL.appId]),
      },
    ]),
  );
}

/**
 * `docker.logs <name> [tail=N|all] [since=…] [timestamps=True]`: what the container printed
 * (stdout and stderr, in order) as one string. `since`: a UNIX time, an ISO date or a duration
 * back from now (`10m`, `2h`). Read as a stream, keeping the newest MAX_LOG_BYTES.
 */
export async function logs(device: CommandPort, call: ExecuteCommand, scope: KeyScope): Promise<string> {
  const a = bind(call, [NameParam, { name: 'tail', type: 'string' }, { name: 'since', type: 'string' }, { name: 'timestamps', type: 'boolean' }]);
  if (a.tail !== undefined && !/^(all|\d+)$/.test(a.tail))
    throw new ValidationError('/kwarg/tail', 'a number of lines, or all', `arguments of ${call.command}`);
  const since = a.since === undefined ? 0 : sinceSeconds(a.since, call.command);
  const c = await containerNamed(device, a.name!, scope);
  const kept = new NewestBytes(MAX_LOG_BYTES);
  // (a follow asked to stop at `until` would only end when the container prints again)
  await device.engine.containerLogs(c.id, { tail: a.tail ?? 'all', since, timestamps: a.timestamps === true }, (chunk) => kept.push(chunk));
  return kept.text();
}

/** `docker.restart|stop|start <name> [force=True]`: through the device API's own actions (update locks honoured unless forced). */
export const restart = (device: CommandPort, call: ExecuteCommand, scope: KeyScope) =>
  changeState(device, call, scope, (appId, service, force) => device.actions.restartService(appId, service, force));
export const stop = (device: CommandPort, call: ExecuteCommand, scope: KeyScope) =>
  changeState(device, call, scope, (appId, service, force) => device.actions.stopService(appId, service, force));
export const start = (device: CommandPort, call: ExecuteCommand, scope: KeyScope) =>
  changeState(device, call, scope, (appId, service) => device.actions.startService(appId, service));

/** Salt's answer: `{result: true, state: {old, new}}`. */
async function changeState(
  device: CommandPort,
  call: ExecuteCommand,
  scope: KeyScope,
  act: (appId: number, service: string, force: boolean) => Promise<unknown>,
) {
  const a = bind(call, [NameParam, ForceParam]);
  const c = await containerNamed(device, a.name!, scope);
  const old = await device.engine.containerState(c.id);
  await act(c.appId, c.serviceName, a.force === true);
  const now = await device.actions.serviceContainer(c.appId, c.serviceName);
  return { result: true, state: { old, new: await device.engine.containerState(now.id) } };
}

/** The owned container (of an app the key covers) `name` stands for: a container name or id, else a service's current container. */
async function containerNamed(device: CommandPort, name: string, scope: KeyScope): Promise<CurrentContainer> {
  const containers = (await device.engine.containers()).filter((c) => coversApp(scope, c.appId));
  const exact = containers.find((c) => c.name === name || c.id === name || (name.length >= 12 && c.id.startsWith(name)));
  if (exact) return exact;
  const apps = [...new Set(containers.filter((c) => c.serviceName === name).map((c) => c.appId))];
  if (apps.length > 1)
    throw new ValidationError('/arg/0', `apps ${apps.join(' and ')} both have a service ${name}: name the container instead`, 'container name');
  if (apps.length === 1) return device.actions.serviceContainer(apps[0]!, name);
  const services = [...new Set(containers.map((c) => c.serviceName))].sort();
  const whose = scope.kind === 'app' ? `app ${scope.appId}` : "this device's apps";
  throw new NotFoundError(`no container of ${whose} is named ${name}${services.length ? ` (its services: ${services.join(', ')})` : ''}`);
}

/** `since` as the engine takes it: seconds since the epoch. */
function sinceSeconds(since: string, command: string): number {
  const relative = /^(\d+)([smhd])$/.exec(since);
  if (relative) return Date.now() / 1000 - Number(relative[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[relative[2] as 's']!;
  if (/^\d+(\.\d+)?$/.test(since)) return Number(since);
  const at = Date.parse(since);
  if (Number.isNaN(at)) throw new ValidationError('/kwarg/since', 'a UNIX time, an ISO date or a duration such as 10m', `arguments of ${command}`);
  return at / 1000;
}

/** The newest `max` bytes of a stream of chunks; what was left out is said on the first line. */
class NewestBytes {
  private chunks: Buffer[] = [];
  private size = 0;
  private dropped = 0;

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size - this.chunks[0]!.length >= this.max) {
      const first = this.chunks.shift()!;
      this.size -= first.length;
      this.dropped += first.length;
    }
  }

  text(): string {
    let all = Buffer.concat(this.chunks);
    let dropped = this.dropped;
    if (all.length > this.max) {
      // start at a whole line
      const newline = all.indexOf(10, all.length - this.max - 1);
      const from = newline < 0 ? all.length - this.max : newline + 1;
      dropped += from;
      all = all.subarray(from);
    }
    return `${dropped ? `[${dropped} bytes of older output left out: ask for fewer with tail or since]\n` : ''}${all.toString('utf8')}`;
  }
}
