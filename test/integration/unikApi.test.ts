// The agent's UniK API with the docker provider, driven as UniK's Go client drives it
// (unikGoClient.ts): build → run → logs (plain, followed, followed with delete) → stop/start →
// a volume from a tar → attach → its data visible inside → detach → the hub → delete everything.
// A real agent on the real engine and registry.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { test } from 'node:test';
import { readCurrentState } from '../../src/agent/engine/readState.js';
import { converge, docker, ENGINE_SCOPE, freshAppId, registry, service, sleep, startAgent, target, waitFor } from './harness.js';
import { type GoClientError, tarOf, UnikGoClient, refusedWith } from './unikGoClient.js';

const BUSYBOX = fs.readFileSync('/bin/busybox');
const suffix = `${process.pid}`;

const logsContain = (c: UnikGoClient, id: string, text: string) =>
  waitFor(`"${text}" in the logs of ${id}`, async () => ((await c.logs(id)).includes(text) ? true : undefined));

/** The states `c` lists for the instance `name` while `during` runs (as often as it can ask); a repeated id fails. */
async function statesDuring(c: UnikGoClient, name: string, during: Promise<unknown>): Promise<Set<string>> {
  const states = new Set<string>();
  let done = false;
  const finished = during.finally(() => (done = true));
  while (!done) {
    const list = await c.instances();
    assert.equal(new Set(list.map((i) => i.Id)).size, list.length, 'one entry per instance');
    for (const i of list) if (i.Name === name) states.add(i.State);
  }
  await finished;
  return states;
}

test('UniK API, docker provider: the whole life of images, instances and volumes as the unik CLI drives it', async (t) => {
  const appId = freshAppId();
  const { agent, dataDir } = await startAgent(t, [appId], { unikPort: 0 });
  const c = new UnikGoClient(`127.0.0.1:${agent.unikPort()}`);

  // qemu too: .ci/run installs it (its own test: unikQemuApi.test.ts)
  assert.deepEqual(await c.availableProviders(), ['docker', 'qemu']);
  assert.deepEqual(await c.availableCompilers(), ['docker-dockerfile-docker', 'static-binary-docker', 'static-binary-qemu']);
  assert.match(await c.describeCompiler('docker', 'static', 'binary'), /static/);

  // build: one static executable, FROM scratch + it; a mount point it declares
  const bb = `bb${suffix}`;
  const script = 'echo started; cat /data/hello.txt /data/data 2>/dev/null || echo no-data; while true; do sleep 1; done';
  const image = await c.build(bb, await tarOf([{ name: 'busybox', body: BUSYBOX, mode: 0o755 }]), 'static', 'binary', 'docker', `sh -c '${script}'`, ['/data']);
  assert.equal(image.Name, bb);
  assert.equal(image.Infrastructure, 'docker');
  assert.equal(image.RunSpec.Compiler, 'static-binary-docker');
  assert.deepEqual(
    image.RunSpec.DeviceMappings.map((d) => d.MountPoint),
    ['/data'],
  );
  assert.ok(image.SizeMb >= 1);
  assert.deepEqual((await c.image(image.Id.slice(0, 6))).Id, image.Id, 'a unique id prefix finds it');
  assert.ok((await c.images()).some((i) => i.Id === image.Id));

  // an empty volume for the declared mount, then run
  const empty = await c.createVolume(`empty${suffix}`, undefined, 'docker', 10);
  assert.equal(empty.SizeMb, 10);
  const running = c.run(`i${suffix}`, bb, { '/data': empty.Name }, { GREETING: 'hi' });
  // while its container is created and started: pending, never the engine's `created` (stopped)
  for (const state of await statesDuring(c, `i${suffix}`, running)) assert.ok(state === 'pending' || state === 'running', state);
  const inst = await running;
  assert.equal(inst.State, 'running');
  assert.equal(inst.ImageId, image.Id);
  assert.equal((await c.volume(empty.Name)).Attachment, inst.Id);
  await logsContain(c, inst.Name, 'no-data');

  // the reconciler leaves UniK's objects alone: a release comes and goes, the instance runs on
  await agent.setTarget(target({ [appId]: { services: { web: service() } } }), 'file');
  await converge(agent);
  const [container] = await docker.listContainers({ all: true, filters: { label: [`io.bosun.unik.id=${inst.Id}`] } });
  assert.ok(container);
  const current = await readCurrentState(docker, ENGINE_SCOPE);
  assert.ok(!current.others.some((o) => o.id === container.Id), 'UniK containers are no app\'s "initial containers" (remove_containers)');
  await agent.setTarget(target({}), 'file');
  await converge(agent);
  assert.equal((await c.instance(inst.Id)).State, 'running');

  // a followed log with fallow (the docs' spelling) and delete=false: a NUL keep-alive while idle, the instance stays
  const follow = await c.attachLogs(inst.Id, false, 'fallow');
  const seen = await new Promise<Buffer>((resolve) => {
    const chunks: Buffer[] = [];
    follow.on('data', (b: Buffer) => {
      chunks.push(b);
      if (b.includes(0)) resolve(Buffer.concat(chunks));
    });
  });
  follow.abort();
  assert.match(seen.toString(), /started/);
  await sleep(500);
  assert.equal((await c.instance(inst.Id)).State, 'running');

  // stop, start; the stop signal reaches the app (an init is PID 1): it ends on SIGTERM (143), not
  // killed (137) at the end of the grace period, as an app that is PID 1 itself would be
  await c.stop(inst.Name);
  assert.equal((await c.instance(inst.Name)).State, 'stopped');
  assert.equal((await docker.getContainer(container.Id).inspect()).State.ExitCode, 143);
  await c.start(inst.Name);
  assert.equal((await c.instance(inst.Name)).State, 'running');

  // a volume from a tar (gzip, sniffed), attached where the empty one was: its data is visible inside
  const dataTar = zlib.gzipSync(await tarOf([{ name: 'hello.txt', body: 'hello from the volume\n' }]));
  const data = await c.createVolume(`data${suffix}`, dataTar, 'docker', 0);
  assert.equal(data.Attachment, '');
  assert.equal(await c.detach(empty.Name), empty.Name);
  assert.equal((await c.volume(empty.Name)).Attachment, '');
  const attaching = c.attach(data.Name, inst.Id, '/data');
  for (const state of await statesDuring(c, inst.Name, attaching)) assert.ok(state === 'pending' || state === 'running', state);
  assert.equal(await attaching, data.Name);
  assert.equal((await c.volume(data.Name)).Attachment, inst.Id);
  assert.equal((await c.instance(inst.Id)).State, 'running', 'a running instance runs on after an attach');
  await logsContain(c, inst.Id, 'hello from the volume');
  assert.equal(await c.detach(data.Name), data.Name);
  assert.equal((await c.volume(data.Name)).Attachment, '');

  // raw=true: the bytes as they came, one file `data` at the volume's top; no larger than the size asked
  const rawBytes = Buffer.from('raw bytes for unik\n');
  const raw = await c.createVolume(`raw${suffix}`, rawBytes, 'docker', 1, { raw: true });
  assert.equal(raw.SizeMb, 1);
  assert.equal(await c.attach(raw.Name, inst.Id, '/data'), raw.Name);
  await logsContain(c, inst.Id, 'raw bytes for unik');
  assert.equal(await c.detach(raw.Name), raw.Name);
  await c.deleteVolume(raw.Name);
  await refusedWith(400, c.createVolume(`rawbig${suffix}`, Buffer.alloc(1024 * 1024 + 1), 'docker', 1, { raw: true }), /does not fit a volume of 1 MB/);
  await refusedWith(400, c.createVolume(`tarbig${suffix}`, await tarOf([{ name: 'big', body: Buffer.alloc(2 * 1024 * 1024) }]), 'docker', 1), /does not fit/);
  assert.equal((await c.volumes()).filter((v) => v.Name.includes('big')).length, 0, 'nothing half-made');

  // UniK's objects survive an agent restart (found again through their labels)
  await agent.stop();
  const { agent: again } = await startAgent(t, [], { dataDir, unikPort: 0 });
  const c2 = new UnikGoClient(`127.0.0.1:${again.unikPort()}`);
  assert.equal((await c2.instance(inst.Id)).State, 'running');
  assert.equal((await c2.volume(data.Id)).Name, data.Name);

  // the Dockerfile compiler; a followed log with delete=true removes the instance once the client leaves
  const df = `df${suffix}`;
  const dockerfile =
    'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "sh", "-c", "while true; do /bin/busybox echo tick; /bin/busybox sleep 0.3; done"]\n';
  await c2.build(
    df,
    await tarOf([
      { name: 'Dockerfile', body: dockerfile },
      { name: 'busybox', body: BUSYBOX, mode: 0o755 },
    ]),
    'docker',
    'dockerfile',
    'docker',
    '',
    [],
  );
  const ticker = await c2.run(`t${suffix}`, df, null, null);
  const stream = await c2.attachLogs(ticker.Id, true);
  await new Promise<void>((resolve) => {
    let text = '';
    stream.on('data', (b: Buffer) => {
      text += b.toString();
      if ((text.match(/tick/g) ?? []).length >= 3) resolve();
    });
  });
  stream.abort();
  await waitFor('the followed instance deleted', async () => ((await c2.get(`/instances/${ticker.Id}`)).status === 404 ? true : undefined));

  // the hub: an OCI registry with its credentials
  const hub = { URL: registry.url, Username: registry.username, Password: registry.password };
  await refusedWith(400, c2.push({ ...hub, Password: 'wrong' }, df), /credentials/);
  await c2.push(hub, df);
  const dfImage = await c2.image(df);
  await c2.deleteImage(df);
  await refusedWith(404, c2.image(df));
  await c2.pull(hub, df, 'docker');
  assert.equal((await c2.image(df)).Id, dfImage.Id, 'the pulled image is the pushed one');
  await refusedWith(409, c2.pull(hub, df, 'docker'), /exists/);
  await c2.remoteDelete(hub, df);
  await refusedWith(404, c2.pull(hub, df, 'docker', true));

  // delete everything
  await c2.deleteInstance(inst.Id, true);
  for (const v of [empty, data]) await c2.deleteVolume(v.Id);
  for (const i of [bb, df]) await c2.deleteImage(i).catch((err: GoClientError) => assert.equal(err.status, 404));
  assert.deepEqual(await c2.instances(), []);
  assert.deepEqual(await c2.volumes(), []);
  assert.deepEqual(await c2.images(), []);
});
