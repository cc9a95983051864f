// Pure parts of the UniK docker provider: the hub address as a registry reference, and the check that
// the upload of `static-binary-docker` is a statically linked executable (FROM scratch has no loader).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import tarStream from 'tar-stream';
import { RAW_FILE } from '../../src/agent/unik/docker/dockerVolumes.js';
import { packFile } from '../../src/agent/unik/packDir.js';
import type Docker from 'dockerode';
import { elfKind } from '../../src/agent/unik/docker/dockerBuild.js';
import { hubRef } from '../../src/agent/unik/docker/dockerHub.js';
import { toInstance, UNIK } from '../../src/agent/unik/docker/dockerLabels.js';
import { INSTANCE_STATES, UnikError } from '../../src/agent/unik/provider.js';

const hub = (url: string) => ({ url, username: 'u', password: 'p' });

test('hub: a registry host, http on loopback or when named, https elsewhere; the image under unik/docker/', () => {
  assert.deepEqual(hubRef(hub('127.0.0.1:5123'), 'Web'), { host: '127.0.0.1:5123', repo: 'unik/docker/web', scheme: 'http' });
  assert.deepEqual(hubRef(hub('https://Registry.example/'), 'web'), { host: 'registry.example', repo: 'unik/docker/web', scheme: 'https' });
  assert.deepEqual(hubRef(hub('http://10.0.0.2:5000'), 'web'), { host: '10.0.0.2:5000', repo: 'unik/docker/web', scheme: 'http' });
  assert.equal(hubRef(hub('registry.example'), 'web').scheme, 'https');
  for (const bad of ['', 'registry.example/some/path', 'ftp://x', 'a b']) {
    assert.throws(
      () => hubRef(hub(bad), 'web'),
      (err: unknown) => err instanceof UnikError && err.kind === 'bad-request',
      bad,
    );
  }
});

test('static-binary: a static ELF executable passes; a dynamic one and other files do not', async () => {
  assert.equal(await elfKind('/bin/busybox'), 'static');
  assert.equal(await elfKind(process.execPath), 'dynamic');
  const text = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'unik-elf-')), 'script.sh');
  fs.writeFileSync(text, '#!/bin/sh\necho hi\n'.repeat(10));
  assert.equal(await elfKind(text), 'not-elf');
});

test("instance state: only UniK's values; a container the provider is still creating or starting is pending", () => {
  const container = (State: string) => ({ State, Labels: { [UNIK.id]: 'i1', [UNIK.name]: 'one' }, Created: 0 }) as unknown as Docker.ContainerInfo;
  for (const engineState of ['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead', 'something-new']) {
    assert.ok(INSTANCE_STATES.includes(toInstance(container(engineState)).State), engineState);
    assert.equal(toInstance(container(engineState), true).State, 'pending', engineState);
  }
  assert.equal(toInstance(container('created')).State, 'stopped', 'created and never started by a run: stopped');
  assert.equal(toInstance(container('something-new')).State, 'unknown');
});

test('raw volume data: one file `data`, its bytes as they came, readable by any user', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'unik-raw-')), 'raw-upload');
  fs.writeFileSync(file, Buffer.from([0, 1, 2, 0xff]), { mode: 0o600 });
  const entries: { name: string; mode?: number; body: Buffer }[] = [];
  const extract = tarStream.extract();
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => (entries.push({ name: header.name, mode: header.mode, body: Buffer.concat(chunks) }), next()));
  });
  await pipeline(packFile(file, RAW_FILE), extract);
  assert.deepEqual(entries, [{ name: 'data', mode: 0o644, body: Buffer.from([0, 1, 2, 0xff]) }]);
});
