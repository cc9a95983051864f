// What the agent's UniK API refuses, with UniK's exact status codes and raw-text errors, and that a
// refusal leaves nothing behind: duplicate names, in-use deletes, unknown names, bad and malicious
// tars, run bodies that do not map the image's mount points, two builds of one name at once, a
// delete during a build, a client leaving mid-upload, other origins, a port in use.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { sleep, startAgent } from './harness.js';
import { multipartFile, query, tarOf, UnikGoClient, refusedWith } from './unikGoClient.js';

const BUSYBOX = fs.readFileSync('/bin/busybox');
const suffix = `${process.pid}`;

const leftovers = (dataDir: string) => {
  const work = path.join(dataDir, 'unik', 'work');
  return fs.existsSync(work) ? fs.readdirSync(work) : [];
};

test('UniK API refusals: names, in-use deletes, unknown names, bad and malicious tars, run bodies', async (t) => {
  const { agent, dataDir } = await startAgent(t, [], { unikPort: 0 });
  const c = new UnikGoClient(`127.0.0.1:${agent.unikPort()}`);
  const binaryTar = await tarOf([{ name: 'busybox', body: BUSYBOX, mode: 0o755 }]);
  const bb = `rbb${suffix}`;
  const image = await c.build(bb, binaryTar, 'static', 'binary', 'docker', 'sh -c "while true; do sleep 1; done"', ['/data', '/logs']);
  try {
    await refusals(c, dataDir, agent.unikPort()!, bb, image.Id, binaryTar);
  } finally {
    for (const i of await c.instances()) await c.deleteInstance(i.Id, true).catch(() => undefined);
    for (const v of await c.volumes()) await c.deleteVolume(v.Id, true).catch(() => undefined);
    for (const i of await c.images()) await c.deleteImage(i.Id, true).catch(() => undefined);
  }
});

async function refusals(c: UnikGoClient, dataDir: string, port: number, bb: string, imageId: string, binaryTar: Buffer): Promise<void> {
  // errors are raw text, as the Go client prints them
  const unknown = await c.get('/images/nope');
  assert.equal(unknown.status, 404);
  assert.match(String(unknown.headers['content-type']), /^text\/plain/);
  assert.equal(unknown.body.toString(), 'no image nope');

  // duplicate names
  await refusedWith(409, c.build(bb, binaryTar, 'static', 'binary', 'docker', '', []), /exists/);
  const v1 = await c.createVolume(`rv1${suffix}`, undefined, 'docker', 1);
  const v2 = await c.createVolume(`rv2${suffix}`, undefined, 'docker', 1);
  await refusedWith(409, c.createVolume(v1.Name, undefined, 'docker', 1), /exists/);
  const inst = await c.run(`ri${suffix}`, bb, { '/data': v1.Name, '/logs': v2.Name }, null);
  await refusedWith(409, c.run(inst.Name, bb, { '/data': v1.Name, '/logs': v2.Name }, null), /exists/);

  // in-use deletes
  await refusedWith(409, c.deleteImage(bb), /used by instance/);
  await refusedWith(409, c.deleteInstance(inst.Id), /running/);
  await refusedWith(409, c.deleteVolume(v1.Name), /attached/);
  await refusedWith(409, c.attach(v1.Name, inst.Id, '/data'), /attached/);

  // unknown names
  await refusedWith(404, c.instance('nope'));
  await refusedWith(404, c.logs('nope'));
  await refusedWith(404, c.deleteVolume('nope'));
  await refusedWith(404, c.run(`x${suffix}`, 'nope', null, null));
  await refusedWith(404, c.attach('nope', inst.Id, '/data'));
  await refusedWith(404, c.start('nope'));

  // run bodies: every declared mount point mapped, and only those
  await refusedWith(400, c.run(`x${suffix}`, bb, { '/data': v1.Name }, null), /needs a volume at \/logs/);
  await refusedWith(400, c.run(`x${suffix}`, bb, { '/data': v1.Name, '/logs': v2.Name, '/other': v1.Name }, null), /declares no mount point \/other/);
  await refusedWith(400, c.run('bad name!', bb, null, null), /name/);
  const badMemory = await c.post('/instances/run', { InstanceName: `x${suffix}`, ImageName: bb, MemoryMb: -1 });
  assert.equal(badMemory.status, 400);
  // an empty volume needs a size; a `null` body with no Content-Type is what the client sends
  await refusedWith(400, c.createVolume(`x${suffix}`, undefined, 'docker', 0), /needs a size/);
  await refusedWith(400, c.attach(`rv1${suffix}`, inst.Id, ''), /mount is required/);

  // bad and malicious tars: 400, nothing built, nothing written anywhere
  const outside = `/tmp/unik-outside-${suffix}`;
  const bad: [string, Buffer, RegExp][] = [
    ['not a tar', Buffer.from('plain text, no tar at all '.repeat(40)), /not a valid tar/],
    ['dot-dot', await tarOf([{ name: `../../../../../../..${outside}`, body: 'x' }]), /"\.\." in its path/],
    ['absolute', await tarOf([{ name: outside, body: 'x' }]), /absolute path/],
    ['symlink out', await tarOf([{ name: 'l', type: 'symlink', linkname: '/tmp' }]), /leads outside/],
    [
      'through a symlink',
      await tarOf([
        { name: 'l', type: 'symlink', linkname: '.' },
        { name: 'l/x', body: 'x' },
      ]),
      /not a directory/,
    ],
    ['hard link out', await tarOf([{ name: 'h', type: 'link', linkname: '/etc/passwd' }]), /absolute path/],
    ['device', await tarOf([{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }]), /not allowed/],
    ['fifo', await tarOf([{ name: 'p', type: 'fifo' }]), /not allowed/],
  ];
  for (const [what, tar, pattern] of bad) {
    await refusedWith(400, c.build(`bad${suffix}`, tar, 'static', 'binary', 'docker', '', []), pattern).catch((err: Error) =>
      assert.fail(`${what}: ${err.message}`),
    );
    await refusedWith(400, c.createVolume(`bad${suffix}`, tar, 'docker', 0), pattern).catch((err: Error) => assert.fail(`${what} (volume): ${err.message}`));
  }
  assert.equal(fs.existsSync(outside), false);
  // tars that are fine as tars but not what the compiler needs
  await refusedWith(400, c.build(`bad${suffix}`, await tarOf([{ name: 'app.js', body: 'x' }]), 'docker', 'dockerfile', 'docker', '', []), /no Dockerfile/);
  await refusedWith(
    400,
    c.build(`bad${suffix}`, await tarOf([{ name: 'sh', body: fs.readFileSync('/bin/sh') }]), 'static', 'binary', 'docker', '', []),
    /dynamically linked/,
  );
  await refusedWith(
    400,
    c.build(
      `bad${suffix}`,
      await tarOf([
        { name: 'a', body: BUSYBOX },
        { name: 'b', body: 'x' },
      ]),
      'static',
      'binary',
      'docker',
      '',
      [],
    ),
    /exactly one file/,
  );
  await refusedWith(400, c.build(`bad${suffix}`, binaryTar, 'static', 'binary', 'docker', 'a && b', []), /operators/);
  await refusedWith(400, c.build(`bad${suffix}`, binaryTar, 'rumprun', 'go', 'docker', '', []), /no compiler/);
  await refusedWith(400, c.build(`bad${suffix}`, binaryTar, 'static', 'binary', 'virtualbox', '', []), /unknown provider/);
  assert.deepEqual(
    (await c.images()).map((i) => i.Name),
    [bb],
  );
  assert.deepEqual(leftovers(dataDir), []);

  // a web page cannot reach it: another origin, or a Host that is not this machine (DNS rebinding)
  for (const headers of [{ origin: 'http://evil.example' }, { host: `evil.example:${port}` }] as Record<string, string>[]) {
    const r = await c.request('DELETE', `/images/${bb}?force=true`, undefined, headers);
    assert.equal(r.status, 403);
  }
  assert.equal((await c.image(bb)).Id, imageId);
}

/** Starts a build whose upload stays unfinished until `finish` is called. */
function slowBuild(port: number, name: string, tar: Buffer) {
  const { body, contentType } = multipartFile('tarfile', 'sources.tar', tar);
  let resolveAnswer: (a: { status: number; body: string }) => void;
  const answer = new Promise<{ status: number; body: string }>((r) => (resolveAnswer = r));
  const req = http.request(
    {
      host: '127.0.0.1',
      port,
      method: 'POST',
      path: `/images/${name}/create${query({ base: 'static', lang: 'binary', provider: 'docker', args: '', mounts: '', force: false, no_cleanup: false })}`,
      headers: { 'content-type': contentType, 'content-length': String(body.length) },
    },
    (res) => {
      let text = '';
      res.on('data', (b: Buffer) => (text += b.toString()));
      res.on('end', () => resolveAnswer({ status: res.statusCode!, body: text }));
    },
  );
  req.on('error', () => resolveAnswer({ status: 0, body: 'connection closed' }));
  req.write(body.subarray(0, 4096));
  return { answer, finish: () => req.end(body.subarray(4096)), abort: () => req.destroy() };
}

test('UniK API: two builds of one name at once, a delete during a build, a client leaving mid-upload, a port in use', async (t) => {
  const { agent, dataDir } = await startAgent(t, [], { unikPort: 0 });
  const port = agent.unikPort()!;
  const c = new UnikGoClient(`127.0.0.1:${port}`);
  const tar = await tarOf([{ name: 'busybox', body: BUSYBOX, mode: 0o755 }]);
  const name = `twice${suffix}`;

  try {
    await concurrently(c, port, dataDir, name, tar);
  } finally {
    for (const i of await c.images()) await c.deleteImage(i.Id, true).catch(() => undefined);
  }

  // a port in use: the agent runs on, and says which option to change
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => blocker.close());
  const busy = (blocker.address() as net.AddressInfo).port;
  const { agent: other, logs } = await startAgent(t, [], { unikPort: busy });
  assert.equal(other.unikPort(), undefined);
  assert.ok(
    logs.some((l) => l.includes(`port ${busy} is in use`) && l.includes('--unik-port')),
    logs.join('\n'),
  );
});

async function concurrently(c: UnikGoClient, port: number, dataDir: string, name: string, tar: Buffer): Promise<void> {
  const first = slowBuild(port, name, tar);
  await sleep(500);
  await refusedWith(409, c.build(name, tar, 'static', 'binary', 'docker', '', []), /being built already/);
  await refusedWith(409, c.deleteImage(name), /being built/);
  first.finish();
  const done = await first.answer;
  assert.equal(done.status, 201, done.body);
  assert.equal((JSON.parse(done.body) as { Name: string }).Name, name);

  // a client that leaves mid-upload: no image, no files left
  const left = slowBuild(port, `left${suffix}`, tar);
  await sleep(500);
  left.abort();
  await left.answer;
  await sleep(500);
  assert.equal(
    (await c.images()).some((i) => i.Name === `left${suffix}`),
    false,
  );
  assert.deepEqual(leftovers(dataDir), []);
}

test('UniK API on a full disk: 507 for an upload that does not fit, nothing half-made, and the next one works', async (t) => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bosun-agent-'));
  const work = path.join(dataDir, 'unik', 'work');
  fs.mkdirSync(work, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', work], { stdio: 'pipe' });
  } catch (err) {
    t.skip(`a small tmpfs cannot be mounted here (needs root): ${(err as Error).message}`);
    return;
  }
  t.after(() => execFileSync('umount', ['-l', work]));
  const { agent } = await startAgent(t, [], { dataDir, unikPort: 0 });
  const c = new UnikGoClient(`127.0.0.1:${agent.unikPort()}`);
  // 2 MB of tar, then 2 MB extracted: more than the 3 MB there
  const tar = await tarOf([{ name: 'busybox', body: BUSYBOX, mode: 0o755 }]);
  const big = await tarOf([
    { name: 'a', body: BUSYBOX },
    { name: 'b', body: BUSYBOX },
  ]);
  await refusedWith(507, c.build(`full${suffix}`, tar, 'static', 'binary', 'docker', '', []), /no space left/);
  await refusedWith(507, c.createVolume(`full${suffix}`, big, 'docker', 0), /no space left/);
  assert.deepEqual(fs.readdirSync(work), []);
  assert.equal(
    (await c.images()).some((i) => i.Name === `full${suffix}`),
    false,
  );
  assert.equal(
    (await c.volumes()).some((v) => v.Name === `full${suffix}`),
    false,
  );
  // a small one fits
  const small = await c.createVolume(`small${suffix}`, await tarOf([{ name: 'x', body: 'x' }]), 'docker', 0);
  await c.deleteVolume(small.Id);
});
