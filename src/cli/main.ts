// `bosun`: the control plane from a terminal or a script, through the public HTTP API only.
// Exit codes (errors.ts) tell scripts what went wrong; messages say what to do next.
import { Command, CommanderError } from 'commander';
import { BOSUN_VERSION } from '../shared/version.js';
import { Api } from './api.js';
import { completionCommand } from './commands/completion.js';
import { deviceCommands } from './commands/device.js';
import { fleetCommands } from './commands/fleet.js';
import { loginCommand } from './commands/login.js';
import { releaseCommands } from './commands/releases.js';
import { currentLogin } from './config.js';
import { CliError, EXIT } from './errors.js';

const EXAMPLES = `
Examples:
  $ bosun login --server http://127.0.0.1:8000 --token "$(cat data/admin-token)"
  $ bosun devices --online
  $ bosun deploy hello --compose docker-compose.yml --version 1.0.0
  $ bosun device <device>
  $ bosun logs <device> -f --service web
  $ bosun exec <device> docker.logs web tail=10
  $ bosun telemetry <device> --field obd.bat.voltage --from -2h --interval 10m --agg avg --csv

Environment: BOSUN_SERVER and BOSUN_TOKEN override what "bosun login" saved.
Exit codes: 0 ok, 1 failure (server error), 2 usage, 3 not logged in or token refused, 4 server
unreachable, 5 not found, 6 request refused (400/409), 7 deployment failed, 8 command failed,
9 timed out.
`;

export function buildProgram(): Command {
  const program = new Command('bosun')
    .description('Bosun: deploy and run multi-container apps on fleets of edge devices')
    .version(BOSUN_VERSION)
    .enablePositionalOptions()
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', EXAMPLES);
  program.exitOverride();
  let api: Api | undefined;
  const client = () => (api ??= new Api(currentLogin()));
  loginCommand(program);
  fleetCommands(program, client);
  releaseCommands(program, client);
  deviceCommands(program, client);
  completionCommand(program);
  for (const c of [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)]) c.exitOverride();
  return program;
}

async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    return EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version print and end normally; anything else is a usage error, already explained
      return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    if (err instanceof CliError) {
      process.stderr.write(`bosun: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`bosun: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT.FAILURE;
  }
}

process.exitCode = await main(process.argv);
