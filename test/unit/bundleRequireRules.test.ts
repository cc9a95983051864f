// scripts/bundleRequireRules.mjs: the bundle's lazy and replaced requires inside third-party
// packages, and the names of the rules that matched nothing (which fail `npm run build`), on a
// scratch package built with esbuild as scripts/bundle-agent.mjs builds the agent.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { build, type Plugin } from 'esbuild';

interface Rule {
  module: string;
  importer: RegExp;
  importKind?: string;
  contents?: string;
}
const rulesModule = new URL('../../scripts/bundleRequireRules.mjs', import.meta.url).href;
const { requireRules } = (await import(rulesModule)) as {
  requireRules: (lazy: Rule[], replaced: Rule[]) => { plugin: Plugin; unmatched: () => string[] };
};

function scratchPackage(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bosun-bundle-rules-'));
  const dep = path.join(dir, 'node_modules/dep/lib');
  fs.mkdirSync(dep, { recursive: true });
  fs.writeFileSync(
    path.join(dep, 'a.js'),
    `const zlib = require('zlib');\nconst os = require('os');\nmodule.exports = () => [typeof zlib.gzipSync, os.platform()];\n`,
  );
  fs.writeFileSync(path.join(dir, 'entry.js'), `module.exports = require('./node_modules/dep/lib/a.js')();\n`);
  return dir;
}

async function bundle(lazy: Rule[], replaced: Rule[]) {
  const dir = scratchPackage();
  try {
    const rules = requireRules(lazy, replaced);
    const out = path.join(dir, 'out.cjs');
    await build({
      entryPoints: [path.join(dir, 'entry.js')],
      outfile: out,
      bundle: true,
      platform: 'node',
      format: 'cjs',
      plugins: [rules.plugin],
      logLevel: 'silent',
    });
    const code = fs.readFileSync(out, 'utf8');
    const exported = (await import(`${out}?${Date.now()}`)) as { default: unknown };
    return { unmatched: rules.unmatched(), code, exported: exported.default };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

test('rules that match their importer apply, and none is reported unmatched', async () => {
  const { unmatched, code, exported } = await bundle(
    [{ module: 'zlib', importer: /node_modules\/dep\/lib\/a\.js$/ }],
    [{ module: 'os', importer: /node_modules\/dep\/lib\/a\.js$/, contents: `module.exports = { platform: () => 'replaced' };` }],
  );
  assert.deepEqual(unmatched, []);
  assert.match(code, /new Proxy\(function/, 'zlib gets the lazy stand-in');
  assert.deepEqual(exported, ['function', 'replaced']);
});

test('a rule whose importer moved, whose module is no longer required, or whose import kind differs is reported', async () => {
  const { unmatched, exported } = await bundle(
    [
      { module: 'zlib', importer: /node_modules\/dep\/a\.js$/ },
      { module: 'https', importer: /node_modules\/dep\/lib\/a\.js$/ },
    ],
    [{ module: 'os', importer: /node_modules\/dep\/lib\/a\.js$/, importKind: 'import-statement', contents: `export const platform = () => 'replaced';` }],
  );
  assert.deepEqual(unmatched, [
    `lazy require-call of 'zlib' from /node_modules\\/dep\\/a\\.js$/`,
    `lazy require-call of 'https' from /node_modules\\/dep\\/lib\\/a\\.js$/`,
    `replaced import-statement of 'os' from /node_modules\\/dep\\/lib\\/a\\.js$/`,
  ]);
  assert.deepEqual(exported, ['function', os.platform()], 'unmatched rules change nothing');
});
