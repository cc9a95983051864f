// README.md cannot rot: every shell block it runs (the convention: README.md, "The README runs";
// test/readmeBlocks.ts) runs as printed, in order, in one bash session, against `npm start` in its
// own data dir. The one change: the ports 8000, 48484, 3000 and 8080 become free ones (in examples/ too). curl fails on an HTTP
// error (a curlrc with fail-with-body), so a refused request fails the test with the server's answer.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readmeBlocks, runnable } from '../readmeBlocks.js';
import { freePort } from './harness.js';
import { npmStart, untilUp } from './npmStart.js';

test("README.md's shell blocks run as printed against npm start", async (t) => {
  const blocks = runnable(readmeBlocks(await fs.readFile('README.md', 'utf8')));
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-readme-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const data = path.join(dir, 'data');
  const s = await npmStart(t, data);
  await untilUp(s);

  const ports: Record<string, number> = {
    8000: Number(new URL(s.url).port),
    48484: s.apiPort,
    3000: Number(s.env.BOSUN_UNIK_PORT),
    8080: await freePort(),
  };
  const freePorts = (text: string) => text.replace(/\b(8000|48484|3000|8080)\b/g, (p) => String(ports[p]));

  // the repository root as the README's reader has it, with npm start's data as ./data, and the
  // examples the blocks deploy copied with the same ports changed
  const root = path.join(dir, 'repo');
  await fs.mkdir(root);
  for (const entry of await fs.readdir('.')) {
    if (entry !== 'data' && entry !== 'examples') await fs.symlink(path.resolve(entry), path.join(root, entry));
  }
  await fs.symlink(data, path.join(root, 'data'));
  await fs.mkdir(path.join(root, 'examples'));
  for (const file of await fs.readdir('examples')) {
    await fs.writeFile(path.join(root, 'examples', file), freePorts(await fs.readFile(path.join('examples', file), 'utf8')));
  }
  await fs.writeFile(path.join(dir, '.curlrc'), 'fail-with-body\nshow-error\n');

  const script = ['set -euo pipefail', ...blocks.flatMap((b) => [`printf '\\n── README.md:%s\\n' ${b.line} >&2`, freePorts(b.text)])].join('\n');
  const run = spawn('bash', ['-c', script], {
    cwd: root,
    env: { ...process.env, CURL_HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  for (const stream of [run.stdout, run.stderr]) stream.on('data', (b: Buffer) => (output += b.toString()));
  const code = await new Promise<number | null>((resolve) => run.once('exit', resolve));
  const failed = [...output.matchAll(/── (README\.md:\d+)/g)].at(-1)?.[1];
  assert.equal(code, 0, `the block at ${failed} failed:\n${output}`);
  for (const b of blocks) assert.ok(output.includes(`── README.md:${b.line}`), `block at line ${b.line} ran`);
  assert.match(output, /hello from bosun/, 'the release of the first hour answers');
});
