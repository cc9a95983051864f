// Remote executions as AutoPi's execute endpoint has them: a module command (`docker.logs`, …) for
// one device becomes a job with a Salt-style jid. The command travels over the device link as a
// device_command of kind `execute` (payload `{command, arg, kwarg}`); the device runs it and posts
// `{return, success, retcode}` back. A job the device does not answer within its timeout (the
// callback_timeout, else EXECUTE_TIMEOUT_S) has timed out: the command expires, and a device
// coming back later does not run it. Jobs go with their command when its retention ends (24 h).
import { NotFoundError } from '../../shared/errors.js';
import type { CommandResult, ExecuteCommand } from '../../shared/executeCommand.js';
import type { ServerDb } from '../db/database.js';
import type { DeviceCommands } from './deviceCommands.js';

/** How long a device has to answer (s), by default and at most. */
export const EXECUTE_TIMEOUT_S = 600;

/** The device's answer to an execute command, over the device link. */
export type JobState = 'pending' | 'done' | 'timed_out';

/** A job as `GET …/command_result/{jid}/` shows it and its callback receives it. */
export interface JobDocument {
  jid: string;
  unit_id: string;
  command: string;
  arg: unknown[];
  kwarg: Record<string, unknown>;
  /** pending (queued, or taken by the device and running), done, or timed_out */
  state: JobState;
  /** null until done */
  return: unknown;
  success: boolean | null;
  retcode: number | null;
  created_at: string;
  /** when the device took the command */
  delivered_at: string | null;
  finished_at: string | null;
  /** when the job times out if the device has not answered */
  timeout_at: string;
}

export type JobRow = NonNullable<Awaited<ReturnType<typeof readJob>>>;

/**
 * A jid as Salt makes them: 20 digits, the job's UTC time (here to the millisecond) and then, in
 * place of Salt's microseconds, the command's sequence number modulo 1000, so that jobs made in the
 * same millisecond, on any node, differ.
 */
export const jidOf = (at: Date, commandId: number) => `${at.toISOString().replace(/\D/g, '').slice(0, 17)}${String(commandId % 1000).padStart(3, '0')}`;

export class ExecuteJobs {
  constructor(
    private readonly db: ServerDb,
    private readonly commands: DeviceCommands,
  ) {}

  /** Queues the command for the device: its jid and unit id (NotFoundError for an unknown device). */
  async create(deviceId: string, command: ExecuteCommand, opts: { timeoutS: number; callbackUrl?: string }): Promise<{ jid: string; unitId: string }> {
    const device = await this.db.selectFrom('device').select('unit_id').where('id', '=', deviceId).executeTakeFirst();
    if (!device) throw new NotFoundError(`no device ${deviceId}`);
    const at = new Date();
    const payload: Required<ExecuteCommand> = { command: command.command, arg: command.arg ?? [], kwarg: command.kwarg ?? {} };
    const id = await this.commands.queue(deviceId, 'execute', payload, opts.timeoutS * 1000);
    const jid = jidOf(at, id);
    await this.db
      .insertInto('command_job')
      .values({
        jid,
        command_id: id,
        callback_url: opts.callbackUrl ?? null,
        // due as soon as the command is finished (or times out)
        callback_next_at: opts.callbackUrl ? at.toISOString() : null,
        callback_attempts: 0,
        callback_delivered_at: null,
        callback_error: null,
      })
      .execute();
    return { jid, unitId: device.unit_id };
  }

  /**
   * The job as it is now; one whose time is up is marked timed out first (the sweep would do it
   * within a minute; whoever looks sooner must not see it pending).
   */
  async find(jid: string): Promise<JobRow | undefined> {
    const row = await readJob(this.db, jid);
    if (!row || !(row.state === 'pending' || row.state === 'delivered') || row.expires_at > new Date().toISOString()) return row;
    await this.commands.expire([row.command_id]);
    return readJob(this.db, jid);
  }
}

/** A job with its command and device. */
function readJob(db: ServerDb, jid: string) {
  return db
    .selectFrom('command_job as j')
    .innerJoin('device_command as c', 'c.id', 'j.command_id')
    .innerJoin('device as d', 'd.id', 'c.device_id')
    .selectAll('j')
    .select(['c.device_id', 'd.unit_id', 'c.state', 'c.payload', 'c.result', 'c.created_at', 'c.delivered_at', 'c.finished_at', 'c.expires_at'])
    .where('j.jid', '=', jid)
    .executeTakeFirst();
}

export function jobDocument(row: JobRow): JobDocument {
  const { command, arg, kwarg } = JSON.parse(row.payload) as Required<ExecuteCommand>;
  const outcome = resultOf(row);
  return {
    jid: row.jid,
    unit_id: row.unit_id,
    command,
    arg,
    kwarg,
    state: row.state === 'expired' ? 'timed_out' : outcome ? 'done' : 'pending',
    return: outcome?.return ?? null,
    success: outcome?.success ?? (row.state === 'expired' ? false : null),
    retcode: outcome?.retcode ?? null,
    created_at: row.created_at,
    delivered_at: row.delivered_at,
    finished_at: row.finished_at,
    timeout_at: row.expires_at,
  };
}

/** done: the device's answer; failed (the device could not run the command at all): an unsuccessful one. */
function resultOf(row: JobRow): CommandResult | undefined {
  if (row.state === 'done') return JSON.parse(row.result!) as CommandResult;
  if (row.state === 'failed')
    return { return: `the device could not run the command: ${(JSON.parse(row.result!) as { error: string }).error}`, success: false, retcode: 1 };
  return undefined;
}
