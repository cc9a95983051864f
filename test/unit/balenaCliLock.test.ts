// The pinned install of the real balena CLI (scripts/balena-cli/, installed by scripts/balena-cli.sh
// with `npm ci`, issue 14): every package is pinned to registry bytes, laid out where the CLI's
// postinstall patches look, and every install script is allowed (npm 11 refuses unreviewed ones
// under strict-allow-scripts). A lockfile rewritten by a plain `npm install` fails here.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  hasInstallScript?: boolean;
  dependencies?: Record<string, string>;
}
const read = (f: string) => JSON.parse(fs.readFileSync(new URL(`../../scripts/balena-cli/${f}`, import.meta.url), 'utf8')) as unknown;
const manifest = read('package.json') as { dependencies: Record<string, string>; allowScripts: Record<string, boolean> };
const lock = read('package-lock.json') as { lockfileVersion: number; packages: Record<string, LockEntry> };
const entries = Object.entries(lock.packages).filter(([key]) => key !== '');
const CLI = 'node_modules/balena-cli';
const nameOf = (key: string) => key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);

test('the lockfile pins the CLI version package.json names, and a version of each of its dependencies beside it', () => {
  const version = manifest.dependencies['balena-cli'];
  assert.match(version ?? '', /^\d+\.\d+\.\d+$/, 'an exact version, not a range');
  assert.equal(lock.lockfileVersion, 3);
  assert.deepEqual(lock.packages['']?.dependencies, manifest.dependencies);
  assert.equal(lock.packages[CLI]?.version, version);
  for (const dep of Object.keys(lock.packages[CLI]?.dependencies ?? {})) {
    assert.ok(lock.packages[`${CLI}/node_modules/${dep}`], `${dep} under ${CLI}/node_modules, where the CLI's patch-package looks`);
  }
});

test('every package is a registry tarball pinned by its sha512 or sha1 integrity, none from git or a folder', () => {
  assert.ok(entries.length > 500, `${entries.length} packages: the CLI's whole tree`);
  for (const [key, entry] of entries) {
    assert.ok(key === CLI || key.startsWith(`${CLI}/node_modules/`), `${key} lies under ${CLI}`);
    assert.match(entry.integrity ?? '', /^sha(512|1)-/, `${key} has an integrity`);
    assert.match(
      entry.resolved ?? '',
      new RegExp(`^https://registry\\.npmjs\\.org/.+/-/[^/]+-${entry.version?.replace(/\./g, '\\.')}\\.tgz$`),
      `${key} is the registry's ${entry.version}`,
    );
  }
});

test('every package with an install script is allowed to run it', () => {
  const withScripts = [...new Set(entries.filter(([, e]) => e.hasInstallScript).map(([key]) => nameOf(key)))].sort();
  assert.ok(withScripts.includes('balena-cli'), 'the CLI itself (its postinstall applies its patches)');
  assert.deepEqual(
    withScripts.filter((name) => manifest.allowScripts[name] !== true),
    [],
  );
});
