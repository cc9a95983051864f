// `bosun login`: checks the token against the server, then saves both (config.ts). The token is
// read from --token, from stdin when it is not a terminal, or asked for without echo.
import type { Command } from 'commander';
import { Api } from '../api.js';
import { normaliseServer, saveLogin } from '../config.js';
import { CliError, EXIT } from '../errors.js';

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += chunk;
    if (text.length > 10_000) break;
  }
  return text.trim();
}

/** Asks on the terminal; what is typed is not echoed. */
function askHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let typed = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(typed.trim());
    };
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new CliError('cancelled', EXIT.USAGE));
        if (ch === '\u007f') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}

export function loginCommand(program: Command): void {
  program
    .command('login')
    .description('save the server and API token the other commands use (checked first; mode 0600 in your config folder)')
    .requiredOption('--server <url>', "the control plane's URL, e.g. http://127.0.0.1:8000")
    .option('--token <token>', 'an API token (else read from stdin, or asked for)')
    .action(async (opts: { server: string; token?: string }) => {
      const server = normaliseServer(opts.server);
      const token = opts.token ?? process.env.BOSUN_TOKEN ?? (process.stdin.isTTY ? await askHidden('API token: ') : await readStdin());
      if (!token) throw new CliError('no token given: pass --token, pipe it in, or type it when asked', EXIT.USAGE);
      // any operator route proves the token; the list of tokens is small
      await new Api({ server, token }).get('/auth/tokens/');
      const file = saveLogin({ server, token });
      process.stdout.write(`logged in to ${server} (saved in ${file})\n`);
    });
}
