// The pure parts of the UniK qemu provider: the cpio writer (read back by busybox cpio), the
// settings the init sources (run by a real busybox sh with hostile values), module load order,
// qemu's command line, and the checks of names, env, ports, mount points and executables.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { UnikError } from '../../src/agent/unik/provider.js';
import { kernelPackageOf } from '../../src/agent/unik/qemu/assets.js';
import { consoleTail, rotateConsole } from '../../src/agent/unik/qemu/console.js';
import { cpioNewc, S_IFDIR, S_IFREG } from '../../src/agent/unik/qemu/cpio.js';
import { HOT_REPLY, initScript, loadOrder, moduleDepends, settingsScript, shellQuote, VIRTIO_MODULES } from '../../src/agent/unik/qemu/guest.js';
import { qemuArgs } from '../../src/agent/unik/qemu/qemuArgs.js';
import { checkEnv, checkMounts, checkName, parsePorts, staticElfProblem } from '../../src/agent/unik/qemu/validate.js';
import { copyRawDisk, volumeSizeMb } from '../../src/agent/unik/qemu/volumes.js';

const BUSYBOX = '/bin/busybox';
const HOSTILE = ["it's", '$(touch /tmp/bosun-pwned)', '`id`', 'a\nb', '; rm -rf /', '"', '\\', "'", '', ' spaced  out ', '$HOME', '*'];

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'bosun-uq-unit-'));
}

const badRequest = (pattern: RegExp) => (err: unknown) => err instanceof UnikError && err.kind === 'bad-request' && pattern.test(err.message);

test('cpio newc: busybox cpio extracts what was written (dirs, modes, contents, odd sizes)', () => {
  const dir = tmp();
  const archive = cpioNewc([
    { name: 'bin', mode: S_IFDIR | 0o755 },
    { name: 'bin/tool', mode: S_IFREG | 0o755, data: Buffer.from('#!/bin/sh\necho hi\n') },
    { name: 'etc', mode: S_IFDIR | 0o700 },
    { name: 'etc/odd', mode: S_IFREG | 0o644, data: Buffer.from('x'.repeat(4097)) },
    { name: 'empty', mode: S_IFREG | 0o600 },
  ]);
  assert.equal(archive.length % 4, 0);
  execFileSync(BUSYBOX, ['cpio', '-i', '-d'], { cwd: dir, input: archive, stdio: ['pipe', 'ignore', 'ignore'] });
  assert.equal(fs.readFileSync(path.join(dir, 'bin/tool'), 'utf8'), '#!/bin/sh\necho hi\n');
  assert.equal(fs.statSync(path.join(dir, 'bin/tool')).mode & 0o777, 0o755);
  assert.equal(fs.readFileSync(path.join(dir, 'etc/odd'), 'utf8'), 'x'.repeat(4097));
  assert.equal(fs.statSync(path.join(dir, 'etc')).mode & 0o777, 0o700);
  assert.equal(fs.statSync(path.join(dir, 'empty')).size, 0);
  assert.throws(() => cpioNewc([{ name: '../escape', mode: S_IFREG }]), /bad cpio entry/);
  assert.throws(() => cpioNewc([{ name: '/abs', mode: S_IFREG }]), /bad cpio entry/);
  fs.rmSync(dir, { recursive: true });
});

test("the init's settings: a real busybox sh runs the app with exactly the env and args given, hostile ones included", () => {
  const dir = tmp();
  const env = Object.fromEntries(HOSTILE.map((v, i) => [`V${i}`, v]));
  const config = path.join(dir, 'config');
  // the app stands in for /app/server (the one change to the script): it prints its args, then its env, NUL-separated
  const app = path.join(dir, 'app');
  const names = ['PATH', 'HOME', ...Object.keys(env)].map((k) => `"$${k}"`).join(' ');
  fs.writeFileSync(app, `#!${BUSYBOX} sh\nfor a; do printf 'arg:%s\\0' "$a"; done\nprintf 'env:%s\\0' ${names}\nprintf 'leak:%s\\0' "$LEAK"\n`, {
    mode: 0o755,
  });
  const script = settingsScript({
    app: 'server',
    args: HOSTILE,
    env,
    points: ["/da'ta"],
    mounts: [{ mountPoint: "/da'ta", serial: 'bosun0' }],
    emptyMounts: [],
  });
  assert.ok(script.includes("'/app/server'"));
  fs.writeFileSync(config, script.replace("'/app/server'", shellQuote(app)));
  const out = execFileSync(BUSYBOX, ['sh', '-c', 'bosun_mount() { printf "mount:%s:%s\\0" "$1" "$2"; }; . "$0"; bosun_run', config], {
    env: { LEAK: 'from the init' },
  }).toString();
  assert.deepEqual(out.split('\0').slice(0, -1), [
    "mount:bosun0:/da'ta",
    ...HOSTILE.map((v) => `arg:${v}`),
    'env:/bin',
    'env:/',
    ...HOSTILE.map((v) => `env:${v}`),
    'leak:', // env -i: nothing of the init's own environment
  ]);
  assert.equal(fs.existsSync('/tmp/bosun-pwned'), false);
  assert.match(settingsScript({ app: 'a', args: [], env: {}, points: ['/data'], mounts: [], emptyMounts: ['/data'] }), /^mkdir -p '\/data'$/m);
  assert.throws(() => shellQuote('a\0b'), /NUL/);
  fs.rmSync(dir, { recursive: true });
});

test('kernel modules load after what they depend on (Debian 6.1: virtio needs virtio_ring)', () => {
  const modinfo = (deps: string) => Buffer.concat([Buffer.from('\x7fELF junk\0license=GPL\0'), Buffer.from(`depends=${deps}\0vermagic=6.1\0`)]);
  assert.deepEqual(moduleDepends(modinfo('virtio_ring')), ['virtio_ring']);
  assert.deepEqual(moduleDepends(modinfo('')), []);
  const depends = new Map([
    ['virtio', ['virtio_ring']],
    ['virtio_pci', ['virtio_ring', 'virtio_pci_modern_dev', 'virtio_pci_legacy_dev', 'virtio']],
    ['net_failover', ['failover']],
    ['virtio_net', ['virtio_ring', 'virtio', 'net_failover']],
    ['virtio_blk', ['virtio', 'virtio_ring']],
  ]);
  assert.deepEqual(loadOrder(VIRTIO_MODULES, depends), [
    'virtio_ring',
    'virtio',
    'virtio_pci_modern_dev',
    'virtio_pci_legacy_dev',
    'virtio_pci',
    'failover',
    'net_failover',
    'virtio_net',
    'virtio_blk',
  ]);
  assert.throws(() => loadOrder(['a'], new Map([['a', ['b']]])), /needs b, which is not packed/);
  assert.throws(
    () =>
      loadOrder(
        ['a', 'b'],
        new Map([
          ['a', ['b']],
          ['b', ['a']],
        ]),
      ),
    /cycle/,
  );
});

test("qemu's command line: ports on 127.0.0.1 only, disks by serial, commas in paths doubled, nothing inherited on the console", () => {
  const args = qemuArgs({
    id: 'abc',
    dir: '/data/odd,dir',
    kernel: '/k/vmlinuz',
    initrd: '/data/odd,dir/initrd.img',
    memoryMb: 128,
    accel: 'tcg',
    ports: [
      { host: 18080, guest: 8080 },
      { host: 2222, guest: 22 },
    ],
    disks: [{ file: '/v/1/disk.ext2', serial: 'bosun0', device: 'vd0' }],
    debug: false,
  });
  const after = (flag: string) => args.filter((_, i) => args[i - 1] === flag);
  assert.deepEqual(after('-name'), ['bosun-unik-abc']);
  assert.deepEqual(after('-accel'), ['tcg']);
  assert.deepEqual(after('-netdev'), ['user,id=n0,hostfwd=tcp:127.0.0.1:18080-:8080,hostfwd=tcp:127.0.0.1:2222-:22']);
  assert.deepEqual(after('-drive'), ['file=/v/1/disk.ext2,if=none,id=d0,format=raw']);
  assert.deepEqual(after('-device'), ['virtio-net-pci,netdev=n0', 'virtio-blk-pci,drive=d0,serial=bosun0,id=vd0']);
  assert.ok(after('-chardev').includes('file,id=con,path=/data/odd,,dir/console.log,append=on'));
  assert.deepEqual(after('-qmp'), ['unix:/data/odd,,dir/qmp.sock,server=on,wait=off']);
  assert.deepEqual(after('-initrd'), ['/data/odd,dir/initrd.img'], '-initrd takes a plain path');
  assert.ok(args.includes('-nodefaults') && args.includes('-no-reboot'));
  assert.match(after('-append')[0]!, /console=ttyS0/);
});

test('names, env, ports and mount points from the caller are checked', () => {
  for (const name of ['../x', '', '-lead', 'a b', 'a/b', 'x'.repeat(65), 'naïve'])
    assert.throws(() => checkName('instance', name), badRequest(/invalid instance name/));
  checkName('image', 'web-1.v2_ok');
  checkEnv({ GOOD_1: HOSTILE.join('') });
  for (const bad of ['1X', 'A-B', 'A=B', '', 'A B']) assert.throws(() => checkEnv({ [bad]: 'v' }), badRequest(/invalid env variable name/));
  assert.throws(() => checkEnv({ A: 'a\0b' }), badRequest(/NUL/));
  assert.throws(() => checkEnv({ A: 'x'.repeat(70_000) }), badRequest(/characters/));
  assert.deepEqual(parsePorts('8080, 18022:22'), [
    { host: 8080, guest: 8080 },
    { host: 18022, guest: 22 },
  ]);
  assert.deepEqual(parsePorts(undefined), []);
  for (const bad of ['0', '65536', 'http', '1:2:3', '-1', '80,80', '1.5']) assert.throws(() => parsePorts(bad), badRequest(/BOSUN_PORTS/));
  checkMounts(['/data', '/var/www']);
  for (const bad of ['data', '/', '/a/../b', '/a//b', '/bin', '/proc/x', '/app', "/a'b", '/a b'])
    assert.throws(() => checkMounts([bad]), badRequest(/mount point/), bad);
  assert.throws(() => checkMounts(['/d', '/d']), badRequest(/twice/));
});

test('the app must be a static x86-64 executable', () => {
  const head = (file: string) => fs.readFileSync(file).subarray(0, 8192);
  assert.equal(staticElfProblem(head(BUSYBOX)), undefined);
  assert.match(staticElfProblem(head('/bin/ls')) ?? '', /dynamically linked/);
  assert.match(staticElfProblem(Buffer.from('#!/bin/sh\necho hi\n'.padEnd(100))) ?? '', /not an ELF/);
  const arm = Buffer.from(head(BUSYBOX));
  arm.writeUInt16LE(183, 18);
  assert.match(staticElfProblem(arm) ?? '', /x86-64/);
});

test('the kernel package the meta-package points at; volume sizes', () => {
  assert.equal(kernelPackageOf('linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-57-cloud-amd64\n'), 'linux-image-6.1.0-57-cloud-amd64');
  assert.equal(kernelPackageOf('linux-image-cloud-amd64\n  Depends: linux-image-6.1.0-57-cloud-amd64;rm\n'), undefined);
  assert.equal(volumeSizeMb(0), 2);
  assert.equal(volumeSizeMb(100, { bytes: 10 * 1024 * 1024, entries: 3 }), 100);
  assert.throws(() => volumeSizeMb(5, { bytes: 10 * 1024 * 1024, entries: 3 }), badRequest(/cannot hold the data: it needs 15 MB/));
  for (const bad of [-1, 1.5, 1e9]) assert.throws(() => volumeSizeMb(bad), badRequest(/volume size/));
});

test('the console is bounded: past its limit its tail moves aside and it starts again, under a writer that keeps appending', async () => {
  const dir = tmp();
  const file = path.join(dir, 'console.log');
  const writer = fs.openSync(file, 'a'); // as qemu's append=on
  fs.writeSync(writer, `${'a'.repeat(900)}${'b'.repeat(100)}`);
  assert.equal(await rotateConsole(file, 2000, 100), false, 'under the limit: untouched');
  fs.writeSync(writer, 'c'.repeat(1500));
  assert.equal(await rotateConsole(file, 2000, 100), true);
  assert.equal(fs.statSync(file).size, 0);
  fs.writeSync(writer, 'after\n');
  assert.equal(fs.readFileSync(file, 'utf8'), 'after\n', 'the writer goes on at the start, no hole');
  assert.equal(await consoleTail(file, 50), `${'c'.repeat(44)}after\n`);
  assert.equal((await consoleTail(file, 1000)).length, 106, 'at most what was kept, then the new');
  fs.closeSync(writer);
  fs.rmSync(dir, { recursive: true });
});

test('a raw disk image: whole sectors within the size asked, copied and grown to it; the upload untouched', async () => {
  const dir = tmp();
  const raw = (name: string, bytes: number) => {
    fs.writeFileSync(path.join(dir, name), Buffer.alloc(bytes, 7));
    return path.join(dir, name);
  };
  const disk = path.join(dir, 'disk');
  assert.equal(await copyRawDisk(raw('ok', 1024 * 1024 + 512), disk, 4), 4);
  assert.equal(fs.statSync(disk).size, 4 * 1024 * 1024);
  assert.deepEqual(fs.readFileSync(disk).subarray(0, 1024 * 1024 + 512), Buffer.alloc(1024 * 1024 + 512, 7));
  assert.equal(fs.statSync(path.join(dir, 'ok')).size, 1024 * 1024 + 512);
  fs.rmSync(disk);
  assert.equal(await copyRawDisk(raw('own', 1536), disk, 0), 1, 'no size: its own, in whole MB');
  fs.rmSync(disk);
  await assert.rejects(copyRawDisk(raw('odd', 1000), disk, 0), badRequest(/whole 512-byte sectors/));
  await assert.rejects(copyRawDisk(raw('empty', 0), disk, 0), badRequest(/empty/));
  await assert.rejects(copyRawDisk(raw('big', 2 * 1024 * 1024 + 512), disk, 2), badRequest(/does not fit a volume of 2 MB/));
  fs.symlinkSync('/etc/passwd', path.join(dir, 'link'));
  await assert.rejects(copyRawDisk(path.join(dir, 'link'), disk, 0), badRequest(/not a regular file/));
  assert.equal(fs.existsSync(disk), false, 'nothing made for a refusal');
  fs.rmSync(dir, { recursive: true });
});

test("the init's control port: mount N and umount N by the image's N-th mount point, answered; anything else ignored", () => {
  const dir = tmp();
  const init = initScript([]);
  const serve = init.slice(init.indexOf('bosun_serve() {'), init.indexOf('\n}\n', init.indexOf('bosun_serve() {')) + 3);
  const [input, answers] = [path.join(dir, 'in'), path.join(dir, 'answers')];
  fs.writeFileSync(input, ['mount 1', 'mount 0; reboot', 'mount $(reboot)', 'umount 0', 'mount 7', 'bogus 0', 'stop', ''].join('\n'));
  const config = settingsScript({ app: 'a', args: [], env: {}, points: ['/data', "/it's"], mounts: [], emptyMounts: [] });
  const script = [
    'bosun_mount() { printf "mount:%s:%s\\n" "$1" "$2"; }',
    'umount() { printf "umount:%s\\n" "$1"; }',
    'kill() { printf "kill:%s\\n" "$*"; }',
    config,
    'app=42',
    serve.replaceAll('/dev/ttyS1', '"$BOSUN_TTY"'),
    'bosun_serve < /dev/null',
  ].join('\n');
  const out = execFileSync(BUSYBOX, ['sh', '-c', script.replace('done < "$BOSUN_TTY"', 'done < "$BOSUN_IN"')], {
    env: { BOSUN_TTY: answers, BOSUN_IN: input, PATH: '/usr/bin:/bin' },
  }).toString();
  assert.deepEqual(out.trim().split('\n'), [
    "mount:bosun1:/it's",
    'umount:/data',
    'bosun-init: unmounted /data',
    'bosun-init: stop requested',
    'kill:-TERM 42',
  ]);
  assert.equal(fs.readFileSync(answers, 'utf8'), `${HOT_REPLY} umounted 0\n`, 'answers go to the control port');
  fs.rmSync(dir, { recursive: true });
});
