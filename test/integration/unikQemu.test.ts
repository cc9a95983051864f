// The UniK provider `qemu` on real qemu: a static busybox built as an image runs `httpd` in a
// micro-VM; its console is the log; HTTP reaches it through the forwarded port; a volume made from a
// folder is mounted inside (the web root); stop/start; a new provider (an agent restart) finds the
// running VM again; refusals; everything deleted leaves nothing behind.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { EventLog } from '../../src/agent/eventLog.js';
import { type UnikImage, type UnikInstance, type UnikProvider, UnikError } from '../../src/agent/unik/provider.js';
import { APP_STARTED } from '../../src/agent/unik/qemu/console.js';
import { createQemuProvider } from '../../src/agent/unik/qemu/qemuProvider.js';
import { freePort } from './harness.js';

const cacheDir = process.env.BOSUN_UNIK_CACHE ?? path.join(os.tmpdir(), 'bosun-unik-cache');
const compiler = { base: 'static', lang: 'binary', description: '' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET http://127.0.0.1:port/path, retried until it answers (the VM boots in seconds under TCG). */
async function httpGet(port: number, urlPath: string, timeoutMs = 120_000): Promise<{ status: number; body: string }> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}${urlPath}`, { signal: AbortSignal.timeout(3000) });
      return { status: res.status, body: await res.text() };
    } catch (err) {
      if (Date.now() > end) throw err;
      await sleep(250);
    }
  }
}

async function refusesConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => (s.destroy(), resolve(false)));
    s.on('error', () => resolve(true));
  });
}

async function folder(files: Record<string, string | Buffer>, mode = 0o644): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-unik-src-'));
  for (const [name, data] of Object.entries(files)) await fs.writeFile(path.join(dir, name), data, { mode });
  return dir;
}

async function provider(dataDir: string): Promise<UnikProvider> {
  const p = await createQemuProvider({ dataDir, cacheDir, log: new EventLog('silent') });
  assert.ok(p, 'qemu-system-x86_64 is installed (.ci/run installs qemu-system-x86)');
  return p;
}

const byName = async (p: UnikProvider, name: string): Promise<UnikInstance> => (await p.listInstances()).find((i) => i.Name === name)!;

/** The instance is `pending` while the VM boots, then `running` once the init started the app (the console shows it). */
async function runningSoon(p: UnikProvider, name: string): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    const { State } = await byName(p, name);
    if (State === 'running') {
      assert.ok((await p.logs(await byName(p, name))).includes(APP_STARTED), 'running only once the app started');
      return;
    }
    assert.equal(State, 'pending');
    await sleep(100);
  }
  assert.fail(`${name} never ran`);
}

async function rejectsWith(promise: Promise<unknown>, kind: UnikError['kind'], pattern: RegExp): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof UnikError && err.kind === kind && pattern.test(err.message));
}

test('qemu: build, run, logs, HTTP through the forwarded port, a volume mounted inside, stop/start, re-found after a restart, delete', async (t) => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-uq-'));
  const busybox = await fs.readFile('/bin/busybox');
  const src = await folder({ busybox }, 0o755);
  const data = await folder({ 'index.html': 'hello from a volume\n' });
  let p = await provider(dataDir);
  t.after(async () => {
    for (const i of await p.listInstances()) await p.deleteInstance(i, true).catch(() => undefined);
    await fs.rm(dataDir, { recursive: true, force: true });
    await fs.rm(src, { recursive: true, force: true });
    await fs.rm(data, { recursive: true, force: true });
  });

  const image: UnikImage = await p.buildImage({
    name: 'web',
    compiler,
    sourceDir: src,
    // httpd serves from / (its home is its cwd: a mount on it would stay unseen, and keep it busy)
    args: ['httpd', '-f', '-vv', '-p', '8080', '-h', '/'],
    mounts: ['/www'],
    signal: new AbortController().signal,
  });
  assert.equal(image.Infrastructure, 'qemu');
  assert.equal(image.RunSpec.Compiler, 'static-binary-qemu');
  assert.deepEqual(image.RunSpec.DeviceMappings, [{ MountPoint: '/www', DeviceName: '/dev/vda' }]);
  assert.ok(image.SizeMb >= 2, `SizeMb ${image.SizeMb}`);

  const volume = await p.createVolume({ name: 'site', sizeMb: 0, dataDir: data });
  assert.equal(volume.Attachment, '');
  assert.ok(volume.SizeMb >= 1);

  const port = await freePort();
  const mounts = new Map([['/www', volume]]);
  const inst = await p.runInstance({
    name: 'web-1',
    image,
    mounts,
    env: { BOSUN_PORTS: `${port}:8080`, GREETING: "it's a 'quoted' $value" },
    memoryMb: 0,
    debugMode: false,
  });
  // the VM boots: pending until the init starts the app (the logs are read after the state)
  assert.ok(inst.State === 'pending' || (await p.logs(inst)).includes(APP_STARTED), `${inst.State} before the app started`);
  await runningSoon(p, 'web-1');
  assert.equal(inst.ImageId, image.Id);
  assert.equal((await p.listVolumes())[0]!.Attachment, inst.Id);

  // HTTP through 127.0.0.1:port reaches httpd in the VM, which serves the volume's file
  const res = await httpGet(port, '/www/index.html');
  assert.deepEqual(res, { status: 200, body: 'hello from a volume\n' });

  // the console is the log: the init's lines and httpd's request log (-vv)
  const logs = await p.logs(inst);
  assert.match(logs, /bosun-init: mounted \/www/);
  assert.match(logs, /bosun-init: starting the app/);

  // follow: what the VM prints from now on
  const ac = new AbortController();
  const followed: Buffer[] = [];
  const following = (async () => {
    for await (const chunk of p.followLogs(inst, ac.signal)) followed.push(chunk);
  })();
  // following starts as the iteration does, on another thread's file read: the request is sent again
  // every second until a line of it comes (a slow start must not miss the only one)
  for (let i = 0; i < 100 && !Buffer.concat(followed).toString().includes('followed-request'); i++) {
    if (i % 10 === 0) await httpGet(port, '/followed-request');
    await sleep(100);
  }
  ac.abort();
  await following;
  assert.match(Buffer.concat(followed).toString(), /followed-request/);
  assert.doesNotMatch(Buffer.concat(followed).toString(), /bosun-init: mounted/, 'from now on, not from the start');

  // refusals while it runs
  await rejectsWith(p.deleteImage(image, false), 'conflict', /web-1/);
  await rejectsWith(p.deleteVolume(volume, false), 'conflict', /attached/);
  await rejectsWith(p.deleteInstance(inst, false), 'conflict', /running/);
  await rejectsWith(p.runInstance({ name: 'web-1', image, mounts: new Map(), env: {}, memoryMb: 0, debugMode: false }), 'bad-request', /mount points/);

  // an agent restart: a new provider over the same data dir finds the VM running, and can stop it
  p = await provider(dataDir);
  const found = await byName(p, 'web-1');
  assert.equal(found.State, 'running');
  await p.stopInstance(found);
  assert.equal((await byName(p, 'web-1')).State, 'stopped');
  assert.ok(await refusesConnections(port), 'the forwarded port is closed once stopped');
  assert.match(await p.logs(found), /bosun-init: stop requested/, 'the graceful path: the init was asked to stop the app');

  await p.startInstance(found);
  await runningSoon(p, 'web-1');
  assert.deepEqual(await httpGet(port, '/www/index.html'), { status: 200, body: 'hello from a volume\n' });

  // detach and attach on the running VM: hot-plugged, the VM runs on (a restart would start its console afresh)
  await httpGet(port, '/before-hotplug');
  await p.detachVolume((await p.listVolumes())[0]!);
  assert.equal((await p.listVolumes())[0]!.Attachment, '');
  assert.equal((await httpGet(port, '/www/index.html')).status, 404, 'an empty /www once unplugged');
  await p.attachVolume((await p.listVolumes())[0]!, found, '/www');
  assert.deepEqual(await httpGet(port, '/www/index.html'), { status: 200, body: 'hello from a volume\n' });
  const hotLogs = await p.logs(found);
  assert.match(hotLogs, /before-hotplug/, 'no restart: the console goes on');
  assert.match(hotLogs, /bosun-init: unmounted \/www[\s\S]*bosun-init: mounted \/www/);
  assert.equal((await byName(p, 'web-1')).State, 'running');

  // raw=true: a disk image made elsewhere (here by mke2fs on the test's side) is the volume's disk as it is
  const rawData = await folder({ 'index.html': 'hello from a raw disk\n' });
  const rawImg = path.join(rawData, '..', `${path.basename(rawData)}.img`);
  t.after(() => Promise.all([rawData, rawImg].map((f) => fs.rm(f, { recursive: true, force: true }))));
  execFileSync('mke2fs', ['-q', '-F', '-t', 'ext2', '-d', rawData, rawImg, '3M'], { stdio: 'pipe' });
  const rawVol = await p.createVolume({ name: 'raw', sizeMb: 0, rawFile: rawImg });
  assert.equal(rawVol.SizeMb, 3);
  await p.detachVolume((await p.listVolumes()).find((v) => v.Name === 'site')!);
  await p.attachVolume(rawVol, found, '/www');
  assert.deepEqual(await httpGet(port, '/www/index.html'), { status: 200, body: 'hello from a raw disk\n' });
  assert.equal((await fs.lstat(rawImg)).size, 3 * 1024 * 1024, 'the upload is read, never taken');
  await p.detachVolume((await p.listVolumes()).find((v) => v.Name === 'raw')!);
  await p.deleteVolume((await p.listVolumes()).find((v) => v.Name === 'raw')!, false);
  assert.match(await p.logs(found), /before-hotplug/, 'still no restart');

  // delete everything: forced while running; nothing is left on disk
  await p.deleteImage(image, true);
  assert.deepEqual(await p.listInstances(), []);
  assert.ok(await refusesConnections(port));
  await p.deleteVolume((await p.listVolumes())[0]!, false);
  assert.deepEqual(await p.listVolumes(), []);
  assert.deepEqual(await p.listImages(), []);
  for (const kind of ['images', 'instances', 'volumes']) assert.deepEqual(await fs.readdir(path.join(dataDir, 'unik/qemu', kind)), [], kind);
});

test('qemu: hostile env and args reach the app verbatim; the app exiting stops the instance; refusals', async (t) => {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-uq-'));
  const src = await folder({ busybox: await fs.readFile('/bin/busybox') }, 0o755);
  const p = await provider(dataDir);
  t.after(async () => {
    for (const i of await p.listInstances()) await p.deleteInstance(i, true).catch(() => undefined);
    await fs.rm(dataDir, { recursive: true, force: true });
    await fs.rm(src, { recursive: true, force: true });
  });
  const signal = new AbortController().signal;
  const hostile = 'it\'s $(reboot) `id`; "q" \\ *';
  const script = 'printf "arg=[%s]\\n" "$@"; printf "env=[%s]\\n" "$GREETING"; printf "path=[%s]\\n" "$PATH"; exit 3';
  const image = await p.buildImage({ name: 'echo', compiler, sourceDir: src, args: ['sh', '-c', script, 'argv0', hostile, ''], mounts: [], signal });

  // two builds of one name at once: one wins, the other is refused
  const twice = await Promise.allSettled([0, 1].map(() => p.buildImage({ name: 'twin', compiler, sourceDir: src, args: [], mounts: [], signal })));
  assert.deepEqual(twice.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  const refused = twice.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  assert.ok(refused.reason instanceof UnikError && refused.reason.kind === 'conflict', String(refused.reason));
  await rejectsWith(p.buildImage({ name: 'echo', compiler, sourceDir: src, args: [], mounts: [], signal }), 'conflict', /taken/);

  const inst = await p.runInstance({ name: 'echo-1', image, mounts: new Map(), env: { GREETING: hostile }, memoryMb: 96, debugMode: false });
  for (let i = 0; i < 600 && (await byName(p, 'echo-1')).State !== 'stopped'; i++) await sleep(100);
  assert.equal((await byName(p, 'echo-1')).State, 'stopped', 'the VM powers off when the app exits');
  const logs = await p.logs(inst);
  assert.ok(logs.includes(`arg=[${hostile}]\r\narg=[]\r\n`), logs);
  assert.ok(logs.includes(`env=[${hostile}]`), logs);
  assert.match(logs, /path=\[\/bin\]/);
  assert.match(logs, /bosun-init: the app exited with status 3/);

  // refusals, each naming the problem; nothing is made
  const dynamic = await folder({ ls: await fs.readFile('/bin/ls') }, 0o755);
  const two = await folder({ a: 'x', b: 'y' });
  t.after(() => Promise.all([dynamic, two].map((d) => fs.rm(d, { recursive: true, force: true }))));
  await rejectsWith(p.buildImage({ name: 'dyn', compiler, sourceDir: dynamic, args: [], mounts: [], signal }), 'bad-request', /dynamically linked/);
  await rejectsWith(p.buildImage({ name: 'two', compiler, sourceDir: two, args: [], mounts: [], signal }), 'bad-request', /exactly one file/);
  await rejectsWith(p.buildImage({ name: '../up', compiler, sourceDir: src, args: [], mounts: [], signal }), 'bad-request', /invalid image name/);
  await rejectsWith(p.buildImage({ name: 'mnt', compiler, sourceDir: src, args: [], mounts: ['/proc'], signal }), 'bad-request', /mount point/);
  await rejectsWith(
    p.buildImage({ name: 'go', compiler: { ...compiler, lang: 'go' }, sourceDir: src, args: [], mounts: [], signal }),
    'bad-request',
    /static-binary-qemu/,
  );
  const run = (name: string, env: Record<string, string>) => p.runInstance({ name, image, mounts: new Map(), env, memoryMb: 0, debugMode: false });
  await rejectsWith(run('echo-1', {}), 'conflict', /taken/);
  await rejectsWith(run('bad-env', { 'A;B': 'x' }), 'bad-request', /env variable name/);
  await rejectsWith(run('bad-ports', { BOSUN_PORTS: '70000' }), 'bad-request', /BOSUN_PORTS/);
  await rejectsWith(p.runInstance({ name: 'big', image, mounts: new Map(), env: {}, memoryMb: 1 << 20, debugMode: false }), 'bad-request', /MemoryMb/);
  // a port that is taken: qemu cannot forward it
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  t.after(() => new Promise((r) => holder.close(r)));
  await rejectsWith(run('port-taken', { BOSUN_PORTS: `${(holder.address() as net.AddressInfo).port}:80` }), 'conflict', /port/);
  assert.deepEqual(
    (await p.listInstances()).map((i) => i.Name),
    ['echo-1'],
  );
  // two runs at once with one volume: one gets it, the other is refused
  const mountImage = await p.buildImage({ name: 'sleeper', compiler, sourceDir: src, args: ['sleep', '600'], mounts: ['/m'], signal });
  const shared = await p.createVolume({ name: 'shared', sizeMb: 2 });
  const both = await Promise.allSettled(
    ['s1', 's2'].map((name) => p.runInstance({ name, image: mountImage, mounts: new Map([['/m', shared]]), env: {}, memoryMb: 0, debugMode: false })),
  );
  assert.deepEqual(both.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  const lost = both.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  assert.ok(lost.reason instanceof UnikError && lost.reason.kind === 'conflict', String(lost.reason));
  assert.equal((await p.listInstances()).filter((i) => i.Name === 's1' || i.Name === 's2').length, 1);
  await p.deleteImage(mountImage, true);
  await p.deleteVolume(shared, false);

  const vol = await p.createVolume({ name: 'empty', sizeMb: 3 });
  assert.equal(vol.SizeMb, 3);
  await rejectsWith(p.attachVolume(vol, inst, '/nowhere'), 'bad-request', /declares no mount point/);
  await rejectsWith(p.createVolume({ name: 'empty', sizeMb: 1 }), 'conflict', /taken/);
  await p.deleteVolume(vol, false);
  await p.deleteImage(image, true);
  assert.deepEqual(await p.listInstances(), []);
});
