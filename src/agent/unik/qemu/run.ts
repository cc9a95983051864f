// Running the host tools the qemu provider needs (apt-get, dpkg-deb, mke2fs): an argument vector,
// never a shell string, with a deadline and bounded output; a failure says what the tool printed.
import { execFile } from 'node:child_process';
import { UnikError } from '../provider.js';

const MAX_OUTPUT = 1024 * 1024;

export function run(cmd: string, args: readonly string[], options: { cwd?: string; timeoutMs: number; signal?: AbortSignal }): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      {
        cwd: options.cwd,
        timeout: options.timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: MAX_OUTPUT,
        signal: options.signal,
        env: { ...process.env, LC_ALL: 'C' },
      },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const said = `${stderr}`.trim().split('\n').slice(-5).join(' | ');
        reject(new UnikError('failed', `${cmd} ${args[0] ?? ''} failed: ${said || err.message}`));
      },
    );
  });
}
