// A conformance client for the agent's UniK API: it sends exactly what UniK's Go client sends and
// parses answers as it does, from solo-io/unik pkg/client/{client,images,instances,volumes}.go over
// layer-x's lxhttpclient:
// - Get/Delete: no body, no Content-Type; Post(path, nil, body): json.Marshal(body) as the body
//   (`null` for nil) and no Content-Type header at all; PostFile(path, "tarfile", file): a
//   multipart/form-data body with one file part named tarfile (mime/multipart CreateFormFile:
//   filename = the file's base name, Content-Type application/octet-stream), parameters in the query.
// - Every call compares the status code exactly (200, 201 build/run/create volume, 204 deletes,
//   202 push/pull/remote-delete/attach/detach) and otherwise fails with "failed with status N: body";
//   JSON answers are unmarshalled into UniK's types (time.Time Created needs RFC 3339, SizeMb int64).
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';

export class GoClientError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(`failed with status ${status}: ${body}`);
  }
}

interface Answer {
  status: number;
  body: Buffer;
  headers: http.IncomingHttpHeaders;
}

export interface Image {
  Id: string;
  Name: string;
  SizeMb: number;
  Infrastructure: string;
  Created: string;
  StageSpec: { ImageFormat: string };
  RunSpec: { DeviceMappings: { MountPoint: string; DeviceName: string }[]; DefaultInstanceMemory: number; MinInstanceDiskMB: number; Compiler: string };
}
export interface Instance {
  Id: string;
  Name: string;
  State: string;
  IpAddress: string;
  ImageId: string;
  Infrastructure: string;
  Created: string;
}
export interface Volume {
  Id: string;
  Name: string;
  SizeMb: number;
  Attachment: string;
  Infrastructure: string;
  Created: string;
}
export interface HubConfig {
  URL: string;
  Username: string;
  Password: string;
}

/** Go's encoding/json into UniK's structs: strings stay strings, int64 must be whole, time.Time must be RFC 3339. */
function checkTypes(kind: 'image' | 'instance' | 'volume', v: Record<string, unknown>): void {
  const strings = {
    image: ['Id', 'Name', 'Infrastructure'],
    instance: ['Id', 'Name', 'State', 'IpAddress', 'ImageId', 'Infrastructure'],
    volume: ['Id', 'Name', 'Attachment', 'Infrastructure'],
  }[kind];
  for (const f of strings) assert.equal(typeof v[f], 'string', `${kind}.${f} must be a JSON string`);
  if (kind !== 'instance') assert.ok(Number.isInteger(v.SizeMb), `${kind}.SizeMb must be an integer (int64)`);
  assert.match(String(v.Created), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/, `${kind}.Created must be RFC 3339 (time.Time)`);
  if (kind === 'image') {
    const run = v.RunSpec as Record<string, unknown>;
    assert.ok(
      Array.isArray(run.DeviceMappings) &&
        Number.isInteger(run.DefaultInstanceMemory) &&
        Number.isInteger(run.MinInstanceDiskMB) &&
        typeof run.Compiler === 'string',
    );
  }
}

export class UnikGoClient {
  constructor(readonly host: string) {}

  // ---- lxhttpclient ----

  request(method: string, p: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Answer> {
    const [hostname, port] = this.host.split(':') as [string, string];
    return new Promise((resolve, reject) => {
      const req = http.request(
        { hostname, port: Number(port), method, path: p, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks), headers: res.headers }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  get = (p: string) => this.request('GET', p);
  delete = (p: string) => this.request('DELETE', p);
  /** json.Marshal(body): `null` for nil; lxhttpclient sets no Content-Type */
  post = (p: string, body: unknown = null) => this.request('POST', p, Buffer.from(JSON.stringify(body)));

  /** lxhttpclient.PostFile: multipart/form-data with the file as part `fileKey` (Go's CreateFormFile). */
  postFile(p: string, fileKey: string, fileName: string, content: Buffer): Promise<Answer> {
    const { body, contentType } = multipartFile(fileKey, fileName, content);
    return this.request('POST', p, body, { 'content-type': contentType });
  }

  private expect(a: Answer, status: number): Answer {
    if (a.status !== status) throw new GoClientError(a.status, a.body.toString());
    return a;
  }

  private json<T>(a: Answer, status: number, kind?: 'image' | 'instance' | 'volume'): T {
    this.expect(a, status);
    const value = JSON.parse(a.body.toString()) as T;
    if (kind) for (const v of Array.isArray(value) ? value : [value]) checkTypes(kind, v as Record<string, unknown>);
    return value;
  }

  // ---- client.go ----

  async availableCompilers(): Promise<string[]> {
    return this.json(await this.get('/available_compilers'), 200);
  }
  async availableProviders(): Promise<string[]> {
    return this.json(await this.get('/available_providers'), 200);
  }
  /** the CLI's describe-compiler: the answer is a plain string */
  async describeCompiler(provider: string, base: string, lang: string): Promise<string> {
    return this.expect(await this.get(`/describe_compiler${query({ provider, base, lang })}`), 200).body.toString();
  }

  // ---- images.go ----

  async images(): Promise<Image[]> {
    return this.json(await this.get('/images'), 200, 'image');
  }
  async image(id: string): Promise<Image> {
    return this.json(await this.get(`/images/${id}`), 200, 'image');
  }
  async build(
    name: string,
    sourceTar: Buffer,
    base: string,
    lang: string,
    provider: string,
    args: string,
    mounts: string[],
    force = false,
    noCleanup = false,
  ): Promise<Image> {
    const q = query({ base, lang, provider, args, mounts: mounts.join(','), force, no_cleanup: noCleanup });
    return this.json(await this.postFile(`/images/${name}/create${q}`, 'tarfile', path.basename('/tmp/sources.tar'), sourceTar), 201, 'image');
  }
  async deleteImage(id: string, force = false): Promise<void> {
    this.expect(await this.delete(`/images/${id}${query({ force })}`), 204);
  }
  async push(c: HubConfig, imageName: string): Promise<void> {
    this.expect(await this.post(`/images/push/${imageName}`, c), 202);
  }
  async pull(c: HubConfig, imageName: string, provider: string, force = false): Promise<void> {
    this.expect(await this.post(`/images/pull/${imageName}${query({ provider, force })}`, c), 202);
  }
  async remoteDelete(c: HubConfig, imageName: string): Promise<void> {
    this.expect(await this.post(`/images/remote-delete/${imageName}`, c), 202);
  }

  // ---- instances.go ----

  async instances(): Promise<Instance[]> {
    return this.json(await this.get('/instances'), 200, 'instance');
  }
  async instance(id: string): Promise<Instance> {
    return this.json(await this.get(`/instances/${id}`), 200, 'instance');
  }
  async deleteInstance(id: string, force = false): Promise<void> {
    this.expect(await this.delete(`/instances/${id}${query({ force })}`), 204);
  }
  async logs(id: string): Promise<string> {
    return this.expect(await this.get(`/instances/${id}/logs`), 200).body.toString();
  }
  /** AttachLogs: `?follow=true&delete=%v`, the body read as it streams */
  attachLogs(id: string, deleteOnDisconnect: boolean, param: 'follow' | 'fallow' = 'follow'): Promise<http.IncomingMessage & { abort(): void }> {
    const [hostname, port] = this.host.split(':') as [string, string];
    return new Promise((resolve, reject) => {
      const req = http.request(
        { hostname, port: Number(port), method: 'GET', path: `/instances/${id}/logs?${param}=true&delete=${deleteOnDisconnect}` },
        (res) => {
          if (res.statusCode !== 200) reject(new GoClientError(res.statusCode!, ''));
          else resolve(Object.assign(res, { abort: () => req.destroy() }));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }
  /** RunInstanceRequest; Go marshals a nil map as null */
  async run(
    instanceName: string,
    imageName: string,
    mounts: Record<string, string> | null,
    env: Record<string, string> | null,
    memoryMb = 0,
    noCleanup = false,
  ): Promise<Instance> {
    const body = { InstanceName: instanceName, ImageName: imageName, Mounts: mounts, Env: env, MemoryMb: memoryMb, NoCleanup: noCleanup, DebugMode: false };
    return this.json(await this.post('/instances/run', body), 201, 'instance');
  }
  async start(id: string): Promise<void> {
    this.expect(await this.post(`/instances/${id}/start`), 200);
  }
  async stop(id: string): Promise<void> {
    this.expect(await this.post(`/instances/${id}/stop`), 200);
  }

  // ---- volumes.go ----

  async volumes(): Promise<Volume[]> {
    return this.json(await this.get('/volumes'), 200, 'volume');
  }
  async volume(id: string): Promise<Volume> {
    return this.json(await this.get(`/volumes/${id}`), 200, 'volume');
  }
  async deleteVolume(id: string, force = false): Promise<void> {
    this.expect(await this.delete(`/volumes/${id}${query({ force })}`), 204);
  }
  /** `raw` and `noCleanup`, when given, go in the query as Go's %v writes them. */
  async createVolume(
    name: string,
    dataTar: Buffer | undefined,
    provider: string,
    size: number,
    opts: { raw?: boolean; noCleanup?: boolean } = {},
  ): Promise<Volume> {
    const extra = { ...(opts.raw === undefined ? {} : { raw: opts.raw }), ...(opts.noCleanup === undefined ? {} : { no_cleanup: opts.noCleanup }) };
    const q = query({ size, provider, ...extra });
    const a = dataTar ? await this.postFile(`/volumes/${name}${q}`, 'tarfile', 'data.tar', dataTar) : await this.post(`/volumes/${name}${q}`);
    return this.json(a, 201, 'volume');
  }
  async attach(id: string, instanceId: string, mountPoint: string): Promise<string> {
    return this.expect(await this.post(`/volumes/${id}/attach/${instanceId}${query({ mount: mountPoint })}`), 202).body.toString();
  }
  async detach(id: string): Promise<string> {
    return this.expect(await this.post(`/volumes/${id}/detach`), 202).body.toString();
  }
}

/** Go's %v of the values, URL-encoded. */
export function query(values: Record<string, string | number | boolean>): string {
  return `?${new URLSearchParams(Object.entries(values).map(([k, v]) => [k, String(v)])).toString()}`;
}

/** What Go's mime/multipart writes for one CreateFormFile part. */
export function multipartFile(fieldName: string, fileName: string, content: Buffer): { body: Buffer; contentType: string } {
  const boundary = 'a7d3f1c2e9b8a6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3';
  const head =
    `--${boundary}\r\nContent-Disposition: form-data; name="${fieldName}"; filename="${fileName}"\r\n` + 'Content-Type: application/octet-stream\r\n\r\n';
  return {
    body: Buffer.concat([Buffer.from(head), content, Buffer.from(`\r\n--${boundary}--\r\n`)]),
    contentType: `multipart/form-data; boundary=${boundary}`,
  };
}

export type TarEntry = import('tar-stream').Headers & { body?: Buffer | string };

/** A plain tar of these entries (what `unik build` uploads). */
export async function tarOf(entries: TarEntry[]): Promise<Buffer> {
  const { default: tarStream } = await import('tar-stream');
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise((resolve) => pack.on('end', resolve));
  for (const { body, ...header } of entries) {
    await new Promise<void>((resolve, reject) => pack.entry(header, body ?? '', (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** The call is refused with this status (compared exactly, as UniK's client does), its raw-text body matching `pattern`. */
export async function refusedWith(status: number, call: Promise<unknown>, pattern?: RegExp): Promise<void> {
  await assert.rejects(call, (err: unknown) => {
    assert.ok(err instanceof GoClientError, String(err));
    assert.equal(err.status, status, err.body);
    if (pattern) assert.match(err.body, pattern);
    return true;
  });
}
