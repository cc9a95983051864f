// The agent's UniK API with the qemu provider, driven as UniK's Go client drives it
// (unikGoClient.ts): build a static busybox → run `httpd` in a micro-VM → logs (plain, followed) →
// HTTP through the forwarded port → stop/start → a volume from a tar → attach → its data served from
// inside → detach → an agent restart finds the VM running → a followed log with delete=true removes
// the instance → delete everything. A real agent, real qemu.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { test } from 'node:test';
import { sleep, startAgent, waitFor, freePort } from './harness.js';
import { type GoClientError, tarOf, UnikGoClient } from './unikGoClient.js';

const BUSYBOX = fs.readFileSync('/bin/busybox');
const suffix = `${process.pid}`;

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return waitFor(
    `HTTP on ${port}${path}`,
    async () => {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined);
      return res && { status: res.status, body: await res.text() };
    },
    180_000,
  );
}

test('UniK API, qemu provider: the whole life of images, instances and volumes as the unik CLI drives it', async (t) => {
  const { agent, dataDir } = await startAgent(t, [], { unikPort: 0 });
  const c = new UnikGoClient(`127.0.0.1:${agent.unikPort()}`);
  assert.ok((await c.availableProviders()).includes('qemu'));
  assert.ok((await c.availableCompilers()).includes('static-binary-qemu'));

  const name = `web${suffix}`;
  const image = await c.build(
    name,
    await tarOf([{ name: 'busybox', body: BUSYBOX, mode: 0o755 }]),
    'static',
    'binary',
    'qemu',
    'httpd -f -vv -p 8080 -h /', // from / (its home is its cwd: a volume mounted there later would stay unseen)
    ['/data'],
  );
  assert.equal(image.Infrastructure, 'qemu');
  assert.equal(image.RunSpec.Compiler, 'static-binary-qemu');

  const empty = await c.createVolume(`empty${suffix}`, undefined, 'qemu', 4);
  assert.equal(empty.SizeMb, 4);
  const port = await freePort();
  const inst = await c.run(`vm${suffix}`, name, { '/data': empty.Name }, { BOSUN_PORTS: `${port}:8080` });
  assert.ok(['pending', 'running'].includes(inst.State), inst.State);
  assert.equal(inst.Infrastructure, 'qemu');
  assert.equal((await get(port, '/data/hello.txt')).status, 404, 'httpd answers from inside the VM; the empty volume has no file');
  assert.match(await c.logs(inst.Name), /bosun-init: mounted \/data/);

  // followed (delete=false): the request log arrives as it happens, and the instance stays
  const follow = await c.attachLogs(inst.Id, false);
  let followed = '';
  follow.on('data', (b: Buffer) => (followed += b.toString()));
  await get(port, '/followed');
  await waitFor('the followed request log', async () => followed.includes('url:/followed') || undefined, 30_000);
  follow.abort();
  await sleep(500);
  assert.equal((await c.instance(inst.Id)).State, 'running');

  await c.stop(inst.Name);
  assert.equal((await c.instance(inst.Name)).State, 'stopped');
  await c.start(inst.Name);
  assert.ok(['pending', 'running'].includes((await c.instance(inst.Name)).State));

  // a volume from a tar (gzip), attached in place of the empty one: hot-plugged into the running VM, which serves its file
  const data = await c.createVolume(`data${suffix}`, zlib.gzipSync(await tarOf([{ name: 'hello.txt', body: 'hello from the volume\n' }])), 'qemu', 0);
  assert.equal(await c.detach(empty.Name), empty.Name);
  assert.equal(await c.attach(data.Name, inst.Id, '/data'), data.Name);
  assert.equal((await c.volume(data.Name)).Attachment, inst.Id);
  assert.deepEqual(await get(port, '/data/hello.txt'), { status: 200, body: 'hello from the volume\n' });
  assert.equal((await c.instance(inst.Id)).State, 'running');

  // an agent restart: the VM runs on and is found again
  await agent.stop();
  const { agent: again } = await startAgent(t, [], { dataDir, unikPort: 0 });
  const c2 = new UnikGoClient(`127.0.0.1:${again.unikPort()}`);
  assert.equal((await c2.instance(inst.Id)).State, 'running');
  assert.deepEqual(await get(port, '/data/hello.txt'), { status: 200, body: 'hello from the volume\n' });
  await assert.rejects(c2.deleteVolume(data.Name), (err: GoClientError) => err.status === 409);
  assert.equal(await c2.detach(data.Name), data.Name);

  // followed with delete=true: the instance goes once the client leaves
  const stream = await c2.attachLogs(inst.Id, true);
  stream.resume();
  await sleep(1000);
  stream.abort();
  await waitFor('the followed instance deleted', async () => ((await c2.get(`/instances/${inst.Id}`)).status === 404 ? true : undefined), 60_000);

  for (const v of [empty, data]) await c2.deleteVolume(v.Id);
  await c2.deleteImage(name);
  assert.deepEqual(
    (await c2.images()).filter((i) => i.Infrastructure === 'qemu'),
    [],
  );
  assert.deepEqual(fs.readdirSync(`${dataDir}/unik/qemu/instances`), []);
});
