// The UniK upload extraction (src/agent/unik/safeExtract.ts): what a hostile tar may try, each refused
// with nothing written outside the folder (and the folder itself gone), and what a normal one holds.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { UnikError } from '../../src/agent/unik/provider.js';
import { safeExtract, symlinkStaysInside } from '../../src/agent/unik/safeExtract.js';
import { tarOf, type TarEntry } from '../integration/unikGoClient.js';

function scratch(): { dir: string; tar: string; dest: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unik-extract-'));
  return { dir, tar: path.join(dir, 'upload.tar'), dest: path.join(dir, 'box', 'out') };
}

async function extract(entries: TarEntry[] | Buffer, limits?: { maxBytes: number; maxEntries: number }) {
  const s = scratch();
  fs.mkdirSync(path.dirname(s.dest));
  fs.writeFileSync(s.tar, Buffer.isBuffer(entries) ? entries : await tarOf(entries));
  return { ...s, run: () => safeExtract(s.tar, s.dest, limits) };
}

async function refused(entries: TarEntry[] | Buffer, pattern: RegExp, limits?: { maxBytes: number; maxEntries: number }) {
  const s = await extract(entries, limits);
  await assert.rejects(s.run(), (err: unknown) => err instanceof UnikError && err.kind === 'bad-request' && pattern.test(err.message));
  assert.equal(fs.existsSync(s.dest), false, 'the folder is removed after a refusal');
  // nothing escaped next to it or above it
  assert.deepEqual(fs.readdirSync(path.dirname(s.dest)), []);
  assert.deepEqual(fs.readdirSync(s.dir).sort(), ['box', 'upload.tar']);
  return s;
}

test('a normal archive: files, folders, an executable, a symlink and a hard link inside', async () => {
  const s = await extract([
    { name: 'Dockerfile', body: 'FROM scratch\n' },
    { name: 'src/', type: 'directory' },
    { name: 'src/app', body: '#!/bin/sh\n', mode: 0o755 },
    { name: './src/lib/x.txt', body: 'x' },
    { name: 'src/lib/up', type: 'symlink', linkname: '../app' },
    { name: 'copy', type: 'link', linkname: 'src/app' },
  ]);
  assert.deepEqual(await s.run(), { files: 3, bytes: 'FROM scratch\n'.length + '#!/bin/sh\n'.length + 1 });
  assert.equal(fs.readFileSync(path.join(s.dest, 'src/lib/x.txt'), 'utf8'), 'x');
  assert.equal(fs.statSync(path.join(s.dest, 'src/app')).mode & 0o777, 0o755);
  assert.equal(fs.readlinkSync(path.join(s.dest, 'src/lib/up')), '../app');
  assert.equal(fs.statSync(path.join(s.dest, 'copy')).ino, fs.statSync(path.join(s.dest, 'src/app')).ino);
});

test('a gzipped archive is recognised by its first bytes', async () => {
  const s = await extract(zlib.gzipSync(await tarOf([{ name: 'a', body: 'gz' }])));
  await s.run();
  assert.equal(fs.readFileSync(path.join(s.dest, 'a'), 'utf8'), 'gz');
});

test('".." in a path is refused', async () => {
  await refused([{ name: '../escaped', body: 'x' }], /"\.\." in its path/);
  await refused([{ name: 'a/../../escaped', body: 'x' }], /"\.\." in its path/);
});

test('an absolute path is refused', async () => {
  await refused([{ name: '/tmp/unik-escaped', body: 'x' }], /absolute path/);
  assert.equal(fs.existsSync('/tmp/unik-escaped'), false);
});

test('symlinks leading out are refused, also through another symlink', async () => {
  await refused([{ name: 'l', type: 'symlink', linkname: '/etc' }], /leads outside/);
  await refused([{ name: 'a/l', type: 'symlink', linkname: '../../x' }], /leads outside/);
  // b -> . then a -> b/.. would be the folder's parent
  await refused(
    [
      { name: 'b', type: 'symlink', linkname: '.' },
      { name: 'a', type: 'symlink', linkname: 'b/..' },
    ],
    /leads outside/,
  );
});

test('writing through a symlink an earlier entry planted is refused', async () => {
  await refused(
    [
      { name: 'd/', type: 'directory' },
      { name: 'l', type: 'symlink', linkname: 'd' },
      { name: 'l/x', body: 'x' },
    ],
    /parent "l" is not a directory/,
  );
  // a file of the same name as a symlink replaces the link, never writes through it
  const s = await extract([
    { name: 't', body: 'target' },
    { name: 'l', type: 'symlink', linkname: 't' },
    { name: 'l', body: 'new' },
  ]);
  await s.run();
  assert.equal(fs.readFileSync(path.join(s.dest, 't'), 'utf8'), 'target');
  assert.equal(fs.lstatSync(path.join(s.dest, 'l')).isFile(), true);
});

test('hard links to anything but a file of the archive are refused', async () => {
  await refused([{ name: 'h', type: 'link', linkname: '/etc/passwd' }], /absolute path/);
  await refused([{ name: 'h', type: 'link', linkname: '../outside' }], /"\.\." in its path/);
  await refused([{ name: 'h', type: 'link', linkname: 'missing' }], /not a file of the archive/);
});

test('device files and FIFOs are refused', async () => {
  await refused([{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }], /character-device entries are not allowed/);
  await refused([{ name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 }], /block-device entries are not allowed/);
  await refused([{ name: 'pipe', type: 'fifo' }], /fifo entries are not allowed/);
});

test('size and entry limits', async () => {
  await refused([{ name: 'big', body: 'x'.repeat(2000) }], /exceed 1000 bytes/, { maxBytes: 1000, maxEntries: 10 });
  await refused(
    Array.from({ length: 5 }, (_, i) => ({ name: `f${i}`, body: '' })),
    /more than 3 entries/,
    { maxBytes: 1000, maxEntries: 3 },
  );
});

test('what is not a tar is refused', async () => {
  await refused(Buffer.from('this is not a tar archive at all, but it is long enough to look at '.repeat(10)), /not a valid tar/);
  await refused(Buffer.from([0x1f, 0x8b, 1, 2, 3, 4]), /gzip stream is corrupt|not a valid tar/);
});

test('symlink targets: leading ".." within depth only', () => {
  assert.equal(symlinkStaysInside(['a', 'b', 'l'], '../../x'), true);
  assert.equal(symlinkStaysInside(['a', 'b', 'l'], '../../../x'), false);
  assert.equal(symlinkStaysInside(['l'], 'x/../y'), false);
  assert.equal(symlinkStaysInside(['l'], './x/y'), true);
  assert.equal(symlinkStaysInside(['l'], ''), false);
});
