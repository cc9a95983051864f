// The UniK routes (src/agent/unik/unikApi.ts) over fastify inject(), against an in-memory provider:
// the wire details of UniK's clients (query or form parameters, the older `compiler=`, `null` bodies
// without a Content-Type, url/user/pass hubs, url-encoded volume forms) and the lookups.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { EventLog } from '../../src/agent/eventLog.js';
import type { BuildRequest, HubConfig, RunRequest, UnikImage, UnikInstance, UnikProvider, UnikVolume, VolumeRequest } from '../../src/agent/unik/provider.js';
import { UnikError } from '../../src/agent/unik/provider.js';
import { DEFAULT_EXTRACT_LIMITS } from '../../src/agent/unik/safeExtract.js';
import { buildUnikApi } from '../../src/agent/unik/unikApi.js';
import { multipartFile, tarOf } from '../integration/unikGoClient.js';

const created = '2026-12-06T10:00:00.000Z';

class FakeProvider implements UnikProvider {
  readonly name = 'fake';
  readonly compilers = [{ base: 'static', lang: 'binary', description: '' }];
  images: UnikImage[] = [];
  instances: UnikInstance[] = [];
  volumes: UnikVolume[] = [];
  builds: BuildRequest[] = [];
  hubs: HubConfig[] = [];
  volumeRequests: VolumeRequest[] = [];

  async listImages() {
    return this.images;
  }
  async buildImage(r: BuildRequest) {
    this.builds.push(r);
    const image: UnikImage = {
      Id: `img${this.images.length}`,
      Name: r.name,
      SizeMb: 1,
      Infrastructure: 'fake',
      Created: created,
      StageSpec: { ImageFormat: 'fake' },
      RunSpec: {
        DeviceMappings: r.mounts.map((m) => ({ MountPoint: m, DeviceName: '' })),
        DefaultInstanceMemory: 1,
        MinInstanceDiskMB: 1,
        Compiler: 'static-binary-fake',
      },
    };
    this.images.push(image);
    return image;
  }
  async deleteImage(image: UnikImage) {
    this.images = this.images.filter((i) => i !== image);
  }
  async listInstances() {
    return this.instances;
  }
  async runInstance(r: RunRequest) {
    const i: UnikInstance = {
      Id: `inst-${r.name}`,
      Name: r.name,
      State: 'running',
      IpAddress: '',
      ImageId: r.image.Id,
      Infrastructure: 'fake',
      Created: created,
    };
    this.instances.push(i);
    return i;
  }
  async startInstance() {}
  async stopInstance() {}
  async deleteInstance(i: UnikInstance) {
    this.instances = this.instances.filter((x) => x !== i);
  }
  async logs() {
    return 'line 1\n';
  }
  async *followLogs(_i: UnikInstance, signal: AbortSignal) {
    yield Buffer.from('line 2\n');
    await new Promise((resolve) => signal.addEventListener('abort', resolve));
  }
  async listVolumes() {
    return this.volumes;
  }
  rawData: Buffer[] = [];
  async createVolume(r: VolumeRequest) {
    this.volumeRequests.push(r);
    if (r.rawFile) this.rawData.push(fs.readFileSync(r.rawFile));
    const v: UnikVolume = { Id: `vol-${r.name}`, Name: r.name, SizeMb: r.sizeMb, Attachment: '', Infrastructure: 'fake', Created: created };
    this.volumes.push(v);
    return v;
  }
  async deleteVolume() {}
  async attachVolume() {}
  async detachVolume() {}
  async pushImage(_image: UnikImage, hub: HubConfig) {
    this.hubs.push(hub);
  }
  async pullImage(): Promise<UnikImage> {
    throw new UnikError('not-found', 'not on the hub');
  }
  async remoteDeleteImage() {}
}

async function api(t: { after(fn: () => void): void }, keptLimitBytes = 1024 * 1024, root = fs.mkdtempSync(path.join(os.tmpdir(), 'unik-routes-'))) {
  const provider = new FakeProvider();
  const [workDir, keptDir] = [path.join(root, 'work'), path.join(root, 'kept')];
  fs.mkdirSync(workDir, { recursive: true });
  t.after(() => fs.rmSync(root, { recursive: true, force: true }));
  const app = await buildUnikApi(
    {
      providers: [provider],
      workDir,
      keptDir,
      keptLimitBytes,
      log: new EventLog('error'),
      uploadLimitBytes: 1024 * 1024,
      extractLimits: DEFAULT_EXTRACT_LIMITS,
    },
    '127.0.0.1',
  );
  return { app, provider, workDir, keptDir };
}

const upload = async (name = 'app') => multipartFile('tarfile', 'sources.tar', await tarOf([{ name, body: 'x' }]));

test('build: parameters from the query, from form fields, or as the older compiler=base-lang-provider', async (t) => {
  const { app, provider } = await api(t);
  const { body, contentType } = await upload();
  const q = await app.inject({
    method: 'POST',
    url: '/images/a/create?base=static&lang=binary&provider=fake&args=sh%20-c%20%27echo%20hi%27&mounts=/data,/logs&force=false&no_cleanup=false',
    headers: { 'content-type': contentType },
    payload: body,
  });
  assert.equal(q.statusCode, 201, q.body);
  assert.deepEqual(provider.builds[0]!.args, ['sh', '-c', 'echo hi']);
  assert.deepEqual(provider.builds[0]!.mounts, ['/data', '/logs']);
  assert.equal(fs.existsSync(provider.builds[0]!.sourceDir), false, 'the extracted sources are removed after the build');

  const older = await app.inject({
    method: 'POST',
    url: '/images/b/create?compiler=static-binary-fake&provider=fake',
    headers: { 'content-type': contentType },
    payload: body,
  });
  assert.equal(older.statusCode, 201, older.body);

  // form fields instead of the query (the documented form)
  const boundary = 'xyz';
  const form = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="base"\r\n\r\nstatic\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="lang"\r\n\r\nbinary\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="provider"\r\n\r\nfake\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="tarfile"; filename="s.tar"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    ),
    await tarOf([{ name: 'app', body: 'x' }]),
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const fields = await app.inject({
    method: 'POST',
    url: '/images/c/create',
    headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
    payload: form,
  });
  assert.equal(fields.statusCode, 201, fields.body);
  assert.equal(provider.builds.length, 3);

  const noFile = await app.inject({ method: 'POST', url: '/images/d/create?base=static&lang=binary&provider=fake', payload: 'null' });
  assert.equal(noFile.statusCode, 400);
  assert.match(noFile.body, /multipart/);
  const wrongPart = multipartFile('source', 's.tar', Buffer.from('x'));
  const wrong = await app.inject({
    method: 'POST',
    url: '/images/d/create?base=static&lang=binary&provider=fake',
    headers: { 'content-type': wrongPart.contentType },
    payload: wrongPart.body,
  });
  assert.equal(wrong.statusCode, 400);
  assert.match(wrong.body, /tarfile/);
});

test('answers: bare arrays, raw-text errors, lookups by name, id or a unique prefix', async (t) => {
  const { app, provider } = await api(t);
  for (const name of ['alpha', 'alpine', 'beta'])
    await provider.buildImage({ name, compiler: provider.compilers[0]!, sourceDir: '', args: [], mounts: [], signal: AbortSignal.abort() });
  const list = await app.inject({ method: 'GET', url: '/images' });
  assert.ok(Array.isArray(list.json()));
  assert.equal((await app.inject({ method: 'GET', url: '/images/beta' })).json().Id, 'img2');
  assert.equal((await app.inject({ method: 'GET', url: '/images/img1' })).json().Name, 'alpine');
  assert.equal((await app.inject({ method: 'GET', url: '/images/be' })).json().Name, 'beta', 'a unique prefix of a name');
  const ambiguous = await app.inject({ method: 'GET', url: '/images/alp' });
  assert.equal(ambiguous.statusCode, 400);
  assert.match(String(ambiguous.headers['content-type']), /^text\/plain/);
  assert.equal(ambiguous.body, 'alp matches 2 images (alpha, alpine): give more of it');
  const missing = await app.inject({ method: 'GET', url: '/images/gamma' });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.body, 'no image gamma');
  assert.equal((await app.inject({ method: 'GET', url: '/describe_compiler?provider=fake&base=static&lang=binary' })).body, '<missing compiler description>');
  assert.equal((await app.inject({ method: 'GET', url: '/nowhere' })).statusCode, 404);
});

test('bodies: `null` without a Content-Type, JSON without one, url-encoded volume forms, url/user/pass hubs', async (t) => {
  const { app, provider } = await api(t);
  await provider.buildImage({ name: 'web', compiler: provider.compilers[0]!, sourceDir: '', args: [], mounts: [], signal: AbortSignal.abort() });
  const run = await app.inject({
    method: 'POST',
    url: '/instances/run',
    payload: JSON.stringify({ InstanceName: 'w1', ImageName: 'web', Mounts: null, Env: null, MemoryMb: 0, NoCleanup: false, DebugMode: false }),
  });
  assert.equal(run.statusCode, 201, run.body);
  const start = await app.inject({ method: 'POST', url: '/instances/w1/start', payload: 'null' });
  assert.equal(start.statusCode, 200);
  const empty = await app.inject({ method: 'POST', url: '/volumes/v1?size=5&provider=fake', payload: 'null' });
  assert.equal(empty.statusCode, 201, empty.body);
  const form = await app.inject({
    method: 'POST',
    url: '/volumes/v2',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'size=7&provider=fake',
  });
  assert.equal(form.statusCode, 201, form.body);
  assert.equal(provider.volumeRequests[1]!.sizeMb, 7);
  const garbage = await app.inject({ method: 'POST', url: '/instances/w1/stop', payload: '{not json' });
  assert.equal(garbage.statusCode, 400);

  for (const hub of [
    { URL: 'r.example:5000', Username: 'u', Password: 'p' },
    { url: 'r.example:5000', user: 'u', pass: 'p' },
  ]) {
    const push = await app.inject({ method: 'POST', url: '/images/push/web', payload: JSON.stringify(hub) });
    assert.equal(push.statusCode, 202, push.body);
  }
  assert.deepEqual(provider.hubs, [
    { url: 'r.example:5000', username: 'u', password: 'p' },
    { url: 'r.example:5000', username: 'u', password: 'p' },
  ]);
  assert.equal((await app.inject({ method: 'POST', url: '/images/push/web', payload: 'null' })).statusCode, 400);
  assert.equal((await app.inject({ method: 'POST', url: '/images/pull/other?provider=fake', payload: JSON.stringify({ URL: 'r.example' }) })).statusCode, 404);
});

test('logs: plain text; followed, the existing lines and then the new ones until the client leaves', async (t) => {
  const { app, provider, workDir } = await api(t);
  provider.instances.push({ Id: 'i1', Name: 'one', State: 'running', IpAddress: '', ImageId: '', Infrastructure: 'fake', Created: created });
  const plain = await app.inject({ method: 'GET', url: '/instances/one/logs' });
  assert.equal(plain.body, 'line 1\n');
  assert.match(String(plain.headers['content-type']), /^text\/plain/);
  const server = await app.listen({ port: 0, host: '127.0.0.1' });
  t.after(() => app.close());
  const controller = new AbortController();
  const res = await fetch(`${server}/instances/one/logs?follow=true&delete=true`, { signal: controller.signal });
  const reader = res.body!.getReader();
  let text = '';
  while (!text.includes('line 2')) text += Buffer.from((await reader.read()).value!).toString();
  assert.equal(text, 'line 1\nline 2\n');
  controller.abort();
  for (let i = 0; i < 50 && provider.instances.length; i++) await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(provider.instances, [], 'delete=true removes the instance once the client left');
  assert.ok(fs.existsSync(workDir));
});

const post = (app: Awaited<ReturnType<typeof api>>['app'], url: string, part: { body: Buffer; contentType: string }) =>
  app.inject({ method: 'POST', url, headers: { 'content-type': part.contentType }, payload: part.body });

test('no_cleanup=true: the sources and volume data are kept under kept/, removed with their image or volume; bounded in total', async (t) => {
  // what belongs to no image any more (deleted while the agent was down) goes when the API loads
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'unik-routes-'));
  fs.mkdirSync(path.join(root, 'kept', 'images', 'ghost'), { recursive: true });
  const { app, provider, workDir, keptDir } = await api(t, 8 * 1024, root);
  assert.deepEqual(fs.readdirSync(path.join(keptDir, 'images')), []);

  const build = await post(app, '/images/a/create?base=static&lang=binary&provider=fake&no_cleanup=true', await upload('server'));
  assert.equal(build.statusCode, 201, build.body);
  const image = JSON.parse(build.body) as UnikImage;
  assert.equal(fs.readFileSync(path.join(keptDir, 'images', image.Id, 'server'), 'utf8'), 'x');
  assert.deepEqual(fs.readdirSync(workDir), [], 'moved out of the work folder');

  const vol = await post(app, '/volumes/v?provider=fake&no_cleanup=true', multipartFile('tarfile', 'd.tar', await tarOf([{ name: 'f', body: 'data' }])));
  assert.equal(vol.statusCode, 201, vol.body);
  const volume = JSON.parse(vol.body) as UnikVolume;
  assert.equal(fs.readFileSync(path.join(keptDir, 'volumes', volume.Id, 'f'), 'utf8'), 'data');

  // past the limit (8 KiB in all): a 507 naming it, and nothing built or left
  const big = multipartFile('tarfile', 'big.tar', await tarOf([{ name: 'big', body: 'y'.repeat(9000) }]));
  const refused = await post(app, '/images/b/create?base=static&lang=binary&provider=fake&no_cleanup=true', big);
  assert.equal(refused.statusCode, 507, refused.body);
  assert.match(refused.body, /no_cleanup.*8192 bytes/);
  assert.equal(provider.builds.length, 1);
  assert.deepEqual(fs.readdirSync(workDir), []);
  assert.equal((await post(app, '/images/b/create?base=static&lang=binary&provider=fake', big)).statusCode, 201, 'without no_cleanup it fits');

  assert.equal((await app.inject({ method: 'DELETE', url: '/images/a' })).statusCode, 204);
  assert.equal((await app.inject({ method: 'DELETE', url: '/volumes/v' })).statusCode, 204);
  assert.deepEqual(fs.readdirSync(path.join(keptDir, 'images')), []);
  assert.deepEqual(fs.readdirSync(path.join(keptDir, 'volumes')), []);
});

test('raw=true: the tarfile part is the volume data as it came (never extracted), in the query or as a form field', async (t) => {
  const { app, provider, workDir } = await api(t);
  const bytes = Buffer.from([0x1f, 0x8b, 0, 1, 2, 3, 0xff]); // gzip's magic, yet not unpacked
  const q = await post(app, '/volumes/r1?provider=fake&raw=true&size=1', multipartFile('tarfile', 'disk.img', bytes));
  assert.equal(q.statusCode, 201, q.body);
  const boundary = 'rawform';
  const form = Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="raw"\r\n\r\ntrue\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="tarfile"; filename="d"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    ),
    bytes,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  const f = await post(app, '/volumes/r2?provider=fake', { body: form, contentType: `multipart/form-data; boundary=${boundary}` });
  assert.equal(f.statusCode, 201, f.body);
  assert.deepEqual(provider.rawData, [bytes, bytes]);
  assert.equal(provider.volumeRequests[0]!.dataDir, undefined);
  assert.deepEqual(fs.readdirSync(workDir), [], 'the raw upload is removed once the volume is made');
});
