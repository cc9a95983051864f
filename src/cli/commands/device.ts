// What an operator does with one device: its logs (or a live tail), a remote command, telemetry.
import type { Command } from 'commander';
import type { Api } from '../api.js';
import { CliError, EXIT } from '../errors.js';
import { printJson, printTable } from '../output.js';
import { findDevice } from '../resources.js';
import { followLogs, printLine, type LogLine } from '../logTail.js';

interface Job {
  jid: string;
  state: 'pending' | 'done' | 'timed_out';
  return: unknown;
  success: boolean | null;
  retcode: number | null;
}

/** Salt's command line: `key=value` is a keyword argument, anything else positional; JSON values are parsed. */
export function commandArgs(args: string[]): { arg: unknown[]; kwarg: Record<string, unknown> } {
  const value = (s: string): unknown => {
    try {
      return JSON.parse(s);
    } catch {
      return s;
    }
  };
  const arg: unknown[] = [];
  const kwarg: Record<string, unknown> = {};
  for (const a of args) {
    const m = a.match(/^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s);
    if (m) kwarg[m[1]!] = value(m[2]!);
    else arg.push(value(a));
  }
  return { arg, kwarg };
}

/** An ISO time, `now`, or `-30m` / `-2h` / `-7d` from now. */
export function timeArg(v: string, now = Date.now()): string {
  if (v === 'now') return new Date(now).toISOString();
  const rel = v.match(/^-(\d+)([smhd])$/);
  if (rel) return new Date(now - Number(rel[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[rel[2] as 's']).toISOString();
  if (Number.isNaN(Date.parse(v))) throw new CliError(`"${v}" is not a time: give an ISO time (2024-05-01T10:00:00Z), now, or -30m / -2h / -7d`, EXIT.USAGE);
  return new Date(v).toISOString();
}

export function deviceCommands(program: Command, api: () => Api): void {
  program
    .command('logs <device>')
    .description("a device's log: what its services print and its agent's messages")
    .option('-f, --follow', 'keep printing new lines as they arrive (Ctrl-C ends)')
    .option('--service <name>', 'only the lines of this service')
    .option('--since <time>', 'only lines at or after this time (ISO, or -30m, -2h, -1d)')
    .option('-n, --lines <n>', 'how many of the newest lines', '100')
    .option('--json', 'print each line as JSON (one per line)')
    .action(async (ref: string, opts: { follow?: boolean; service?: string; since?: string; lines: string; json?: boolean }) => {
      const client = api();
      const device = await findDevice(client, ref);
      const limit = Number(opts.lines);
      if (!Number.isInteger(limit) || limit < 0 || limit > 10_000) throw new CliError(`--lines takes 0 to 10000, not "${opts.lines}"`, EXIT.USAGE);
      const query = { service: opts.service, since: opts.since ? timeArg(opts.since) : undefined, limit };
      if (opts.follow) return followLogs(client, device.id, query, opts.json === true);
      const lines = await client.get<LogLine[]>(`/dongle/devices/${encodeURIComponent(device.id)}/logs/`, { ...query, limit: Math.max(1, limit) });
      for (const l of lines) printLine(l, opts.json === true);
    });

  program
    .command('exec <device> <command> [args...]')
    .description("run a module command on the device (AutoPi's execute; key=value arguments are keyword arguments), wait for it and print its return")
    .option('--timeout <seconds>', "stop waiting after this long (exit 9; the job itself ends at the server's timeout, 5 minutes)")
    .option('--json', 'print the whole job as JSON')
    .action(async (ref: string, command: string, args: string[], opts: { timeout?: string; json?: boolean }) => {
      const client = api();
      const device = await findDevice(client, ref);
      const timeout = opts.timeout === undefined ? undefined : Number(opts.timeout);
      if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 1)) throw new CliError('--timeout takes whole seconds', EXIT.USAGE);
      const base = `/dongle/devices/${encodeURIComponent(device.id)}`;
      const { jid } = await client.post<{ jid: string }>(`${base}/execute/`, { command, ...commandArgs(args) });
      const deadline = timeout === undefined ? Infinity : Date.now() + timeout * 1000;
      let job: Job;
      for (let wait = 200; ; wait = Math.min(wait * 2, 2000)) {
        job = await client.get<Job>(`${base}/command_result/${encodeURIComponent(jid)}/`);
        if (job.state !== 'pending') break;
        if (Date.now() >= deadline)
          throw new CliError(`${command} on ${device.name}: no result after ${timeout} s (job ${jid} is still pending)`, EXIT.TIMEOUT);
        await new Promise((r) => setTimeout(r, wait));
      }
      if (opts.json) printJson(job);
      else if (job.state === 'done') process.stdout.write(`${typeof job.return === 'string' ? job.return : JSON.stringify(job.return, null, 2)}\n`);
      if (job.state === 'timed_out')
        throw new CliError(`${command} on ${device.name}: no result in time (is the device online? bosun device ${device.id})`, EXIT.TIMEOUT);
      if (job.success === false) throw new CliError(`${command} on ${device.name} failed (retcode ${job.retcode ?? '-'})`, EXIT.COMMAND_FAILED);
    });

  program
    .command('telemetry <device>')
    .description("a device's telemetry for one field: its points, or aggregated per interval")
    .requiredOption('--field <field>', 'e.g. obd.bat.voltage')
    .option('--type <type>', 'float, int, bool, string or geo_point', 'float')
    .option('--from <time>', 'start (ISO, now, -30m, -2h, -7d)', '-1h')
    .option('--to <time>', 'end, excluded', 'now')
    .option('--interval <interval>', 'bucket width (30s, 10m, 1h, 1d); with --agg')
    .option('--agg <aggregation>', 'avg, min, max, sum or count; with --interval')
    .option('--csv', 'print CSV')
    .option('--json', 'print JSON')
    .action(
      async (ref: string, o: { field: string; type: string; from: string; to: string; interval?: string; agg?: string; csv?: boolean; json?: boolean }) => {
        if ((o.interval === undefined) !== (o.agg === undefined)) throw new CliError('--interval and --agg go together', EXIT.USAGE);
        const client = api();
        const device = await findDevice(client, ref);
        const points = await client.get<Record<string, unknown>[]>('/logbook/storage/read/', {
          device_id: device.id,
          field: o.field,
          field_type: o.type,
          from_utc: timeArg(o.from),
          to_utc: timeArg(o.to),
          aggregation: o.agg,
          interval: o.interval,
        });
        if (o.json) return printJson(points);
        const rows = points.map((p) => {
          const loc = p.location as { lat: number; lon: number } | undefined;
          return loc ? [String(p.ts), String(loc.lat), String(loc.lon)] : [String(p.ts), String(p.value)];
        });
        const head = o.type === 'geo_point' && !o.agg ? ['ts', 'lat', 'lon'] : ['ts', 'value'];
        if (o.csv) {
          const cell = (c: string) => (/[",\n]/.test(c) ? `"${c.replace(/"/g, '""')}"` : c);
          process.stdout.write(`${[head, ...rows].map((r) => r.map(cell).join(',')).join('\n')}\n`);
        } else printTable(head, rows);
      },
    );
}
