// The lint rule that keeps memory-costly Node modules out of the agent's start-up (BENCHMARKS.md §3):
// scripts/lint/agentStaticImports.grit, a Biome plugin on src/agent/**. Run on probe files in a
// scratch copy of the lint configuration, so that it is the shipped rule that is tested.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

const repo = path.resolve(import.meta.dirname, '../..');
const biome = path.join(repo, 'node_modules/.bin/biome');

const PROBE = `import type { Hash } from 'node:crypto';
import { type Worker } from 'node:worker_threads';
import fsp from 'node:fs/promises';
import * as zlib from 'zlib';
import 'node:crypto';
export { createHash } from 'crypto';
export type { Sign } from 'node:crypto';
export * from 'fs/promises';
import { isMainThread } from 'worker_threads';
import { gzip } from 'node:zlib';
import fs from 'node:fs';
export async function f(h: Hash, w: Worker) {
  const c = await import('node:crypto');
  return [h, w, c, fsp, zlib, fs, isMainThread, gzip];
}
export const stamp = (d: Date) => [d.toISOString(), new Date().toISOString(), d.toJSON()];
`;

/** line numbers the plugin reports, per probe file */
function lint(): Map<string, number[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bosun-lint-'));
  try {
    fs.copyFileSync(path.join(repo, 'biome.json'), path.join(dir, 'biome.json'));
    fs.cpSync(path.join(repo, 'scripts/lint'), path.join(dir, 'scripts/lint'), { recursive: true });
    for (const f of ['src/agent/deep/probe.ts', 'src/server/probe.ts', 'src/shared/probe.ts', 'test/unit/probe.ts']) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), PROBE);
    }
    let out: string;
    try {
      out = execFileSync(biome, ['lint', '--vcs-enabled=false', '--only=plugin', '--reporter=json', '--max-diagnostics=none', '.'], {
        cwd: dir,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
    } catch (err) {
      out = (err as { stdout: string }).stdout;
    }
    const report = JSON.parse(out) as { diagnostics: { category: string; location: { path: string; start: { line: number } } }[] };
    const lines = new Map<string, number[]>();
    for (const d of report.diagnostics) {
      assert.equal(d.category, 'plugin');
      lines.set(
        d.location.path,
        [...(lines.get(d.location.path) ?? []), d.location.start.line].sort((a, b) => a - b),
      );
    }
    return lines;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('static imports of fs/promises, crypto, zlib, worker_threads: refused under src/agent; Date#toISOString: under src/agent and src/shared', () => {
  const found = lint();
  // not refused: `import type`, `export type`, node:fs, the dynamic import(); `toJSON`, the same cost,
  // which the rule does not see (the agent puts no Date in JSON)
  assert.deepEqual(found.get('src/agent/deep/probe.ts'), [2, 3, 4, 5, 6, 8, 9, 10, 16, 16]);
  assert.deepEqual(found.get('src/shared/probe.ts'), [16, 16]);
  assert.deepEqual([...found.keys()].sort(), ['src/agent/deep/probe.ts', 'src/shared/probe.ts']);
});
