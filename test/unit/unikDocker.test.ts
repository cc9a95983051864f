// Pure parts of the UniK docker provider: the hub address as a registry reference, and the check that
// the upload of `static-binary-docker` is a statically linked executable (FROM scratch has no loader).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { elfKind } from '../../src/agent/unik/docker/dockerBuild.js';
import { hubRef } from '../../src/agent/unik/docker/dockerHub.js';
import { UnikError } from '../../src/agent/unik/provider.js';

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
