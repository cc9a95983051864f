#!/usr/bin/env node
// Writes scripts/balena-cli/{package.json,package-lock.json}, the pinned install of the real balena
// CLI that scripts/balena-cli.sh makes with `npm ci`, from the npm-shrinkwrap.json balena-cli
// publishes. Run it only to change the CLI's version:
//   node scripts/balena-cli/lock.mjs [version]     (default: the version package.json pins now)
//
// Why not `npm install balena-cli`: npm honours a dependency's shrinkwrap only when the registry's
// metadata says `_hasShrinkwrap`, and not every registry (mirror) says it; without it every transitive
// version floats and the CLI's postinstall patches stop applying. So the lockfile is the shrinkwrap
// itself, laid out as npm lays out an honoured shrinkwrap: under node_modules/balena-cli/node_modules
// (where the CLI's patch-package looks for the packages it patches), without the CLI's dev packages.
// What differs from the shrinkwrap, and why:
// - the CLI's own `overrides` (it pins balena-request below what balena-sdk asks) are copied into
//   package.json: npm applies only the root's overrides, and `npm ci` checks every version;
// - a package the shrinkwrap takes from git (unbzip2-stream: git+ssh, needs GitHub and an ssh key)
//   becomes the registry copy the shrinkwrap has elsewhere (an override makes npm accept it);
// - optional dependencies the shrinkwrap leaves out (bcrypt, bcryptjs, sha.js of
//   @balena/sbvr-types) are dropped from their dependents' entries: npm does not fetch them for an
//   honoured shrinkwrap either, and `npm ci` would otherwise want them.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const NAME = 'bosun-balena-cli';
const current = () => JSON.parse(fs.readFileSync(path.join(here, 'package.json'), 'utf8')).dependencies['balena-cli'];
const version = process.argv[2] ?? current();
const npm = (...args) => execFileSync('npm', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const fromRegistry = (entry) => /^https:\/\//.test(entry.resolved ?? '');

/** Where Node finds `name` from the package at `key` (walking up the node_modules folders). */
function locate(packages, key, name) {
  for (let base = key; ; base = base.slice(0, Math.max(0, base.lastIndexOf('/node_modules/')))) {
    const candidate = `${base ? `${base}/` : ''}node_modules/${name}`;
    if (packages[candidate]) return candidate;
    if (!base) return undefined;
  }
}

/** The published package.json and npm-shrinkwrap.json of balena-cli@version, and its tarball's integrity. */
function fetchCli(tmp) {
  const [packed] = JSON.parse(npm('pack', `balena-cli@${version}`, '--json', '--pack-destination', tmp));
  execFileSync('tar', ['-xzf', path.join(tmp, packed.filename), '-C', tmp, 'package/npm-shrinkwrap.json', 'package/package.json']);
  const read = (f) => JSON.parse(fs.readFileSync(path.join(tmp, 'package', f), 'utf8'));
  const cli = read('package.json');
  if (cli.version !== version) throw new Error(`packed ${cli.version}, expected ${version}`);
  const shrinkwrap = read('npm-shrinkwrap.json');
  if (!(shrinkwrap.lockfileVersion >= 2)) throw new Error(`shrinkwrap lockfileVersion ${shrinkwrap.lockfileVersion}: no packages section`);
  return { cli, shrinkwrap, integrity: packed.integrity };
}

function build({ cli, shrinkwrap, integrity }) {
  const overrides = { ...cli.overrides };
  const { name: _n, version: _v, devDependencies: _d, ...root } = shrinkwrap.packages[''];
  const packages = {
    '': { name: NAME, dependencies: { 'balena-cli': version } },
    'node_modules/balena-cli': { version, resolved: npm('view', `balena-cli@${version}`, 'dist.tarball').trim(), integrity, ...root },
  };
  for (const [key, entry] of Object.entries(shrinkwrap.packages)) {
    if (key !== '' && !entry.dev) packages[`node_modules/balena-cli/${key}`] = structuredClone(entry);
  }
  for (const [key, entry] of Object.entries(packages)) {
    if (key === '' || fromRegistry(entry)) continue;
    const name = key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
    const copy = Object.entries(packages).find(([k, e]) => k.endsWith(`/node_modules/${name}`) && fromRegistry(e))?.[1];
    if (!copy) throw new Error(`${key} comes from ${entry.resolved} and the shrinkwrap has no registry copy of it`);
    packages[key] = copy;
    overrides[name] = copy.version;
    console.log(`${name}: ${entry.resolved} -> the registry's ${copy.version}`);
  }
  for (const [key, entry] of Object.entries(packages)) {
    for (const name of Object.keys(entry.optionalDependencies ?? {})) {
      if (locate(packages, key, name)) continue;
      delete entry.optionalDependencies[name];
      console.log(`${key}: optional ${name} is not in the shrinkwrap; left out`);
    }
    const missing = Object.keys(entry.dependencies ?? {}).filter((name) => !locate(packages, key, name));
    if (missing.length) throw new Error(`${key} needs ${missing.join(', ')}, which the shrinkwrap lacks`);
  }
  // npm 11 asks for every install script to be allowed (and refuses under strict-allow-scripts):
  // all of them run, as they do for the CLI's own installs; the CLI's postinstall applies its patches
  const allowScripts = Object.fromEntries(
    Object.entries(packages)
      .filter(([key, entry]) => key && entry.hasInstallScript)
      .map(([key]) => [key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length), true])
      .sort(([a], [b]) => a.localeCompare(b)),
  );
  const manifest = { name: NAME, private: true, dependencies: { 'balena-cli': version }, overrides, allowScripts };
  return { manifest, lock: { name: NAME, lockfileVersion: 3, requires: true, packages } };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'balena-cli-lock-'));
try {
  const { manifest, lock } = build(fetchCli(tmp));
  fs.writeFileSync(path.join(here, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  fs.writeFileSync(path.join(here, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
  console.log(`balena-cli ${version}: ${Object.keys(lock.packages).length - 1} packages locked`);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
