// Builds a UniK image with the engine: `docker-dockerfile-docker` builds the upload's Dockerfile;
// `static-binary-docker` makes FROM scratch + the upload's one static executable (the container
// analogue of a unikernel). The build context is the safely extracted upload, packed again; the
// image carries its UniK identity in labels. A failed or aborted build leaves no tagged image.
import path from 'node:path';
import type Docker from 'dockerode';
import fsp, { fd } from '../../../shared/fsAsync.js';
import { packDir, type ExtraFile } from '../packDir.js';
import { UnikError, type BuildRequest } from '../provider.js';
import { imageTag, objectLabels, UNIK } from './dockerLabels.js';

const GENERATED_DOCKERFILE = '.bosun-unik.Dockerfile';

/** Builds and tags the image; its engine id. */
export async function buildImage(docker: Docker, scope: string | undefined, id: string, created: string, req: BuildRequest): Promise<string> {
  const { dockerfile, extra } = await context(req);
  const labels = objectLabels(scope, id, req.name, created, {
    [UNIK.compiler]: `${req.compiler.base}-${req.compiler.lang}-docker`,
    [UNIK.mounts]: JSON.stringify(req.mounts),
    [UNIK.args]: JSON.stringify(req.args),
  });
  const tag = imageTag(id);
  const stream = await docker.buildImage(packDir(req.sourceDir, extra), {
    t: tag,
    dockerfile,
    labels,
    rm: true,
    forcerm: true,
    abortSignal: req.signal,
  } as Docker.ImageBuildOptions);
  const events = await new Promise<{ error?: string; errorDetail?: { message?: string } }[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (err, out) => (err ? reject(err) : resolve(out ?? []))),
  ).catch((err: Error) => {
    if (req.signal.aborted) throw new UnikError('conflict', `the build of ${req.name} was cancelled`);
    throw err;
  });
  const failure = events.find((e) => e.error || e.errorDetail);
  if (failure) {
    const message = failure.errorDetail?.message ?? failure.error ?? 'unknown error';
    if (/no space left/i.test(message)) throw new UnikError('insufficient-storage', `the build of ${req.name} ran out of disk space: ${message}`);
    throw new UnikError('bad-request', `the build of ${req.name} failed: ${message}`);
  }
  const info = await docker.getImage(tag).inspect();
  return info.Id;
}

async function context(req: BuildRequest): Promise<{ dockerfile: string; extra: ExtraFile[] }> {
  if (req.compiler.lang === 'dockerfile') {
    const st = await fsp.lstat(path.join(req.sourceDir, 'Dockerfile')).catch(() => undefined);
    if (!st?.isFile()) throw new UnikError('bad-request', 'the tar holds no Dockerfile at its top level');
    return { dockerfile: 'Dockerfile', extra: [] };
  }
  const binary = await theExecutable(req.sourceDir);
  const lines = ['FROM scratch', `COPY ${JSON.stringify([binary, `/${binary}`])}`, `ENTRYPOINT ${JSON.stringify([`/${binary}`])}`];
  return { dockerfile: GENERATED_DOCKERFILE, extra: [{ name: GENERATED_DOCKERFILE, content: `${lines.join('\n')}\n` }] };
}

/** The name of the upload's one file, once it is known to be a statically linked ELF executable. */
async function theExecutable(dir: string): Promise<string> {
  const names = await fsp.readdir(dir);
  const files: string[] = [];
  for (const name of names) if ((await fsp.lstat(path.join(dir, name))).isFile()) files.push(name);
  if (files.length !== 1 || names.length !== 1)
    throw new UnikError('bad-request', `the tar must hold exactly one file, a static executable (it holds ${names.length} entries)`);
  const name = files[0]!;
  const kind = await elfKind(path.join(dir, name));
  if (kind !== 'static')
    throw new UnikError('bad-request', `${name} is ${kind === 'dynamic' ? 'dynamically linked (FROM scratch has no loader)' : 'not an ELF executable'}`);
  return name;
}

/** Whether a file is an ELF executable without an interpreter (PT_INTERP), read from its program headers. */
export async function elfKind(file: string): Promise<'static' | 'dynamic' | 'not-elf'> {
  const f = await fd.open(file, 'r');
  try {
    const head = Buffer.alloc(64);
    await fd.read(f, head, 0, 64, 0);
    if (head.readUInt32BE(0) !== 0x7f454c46) return 'not-elf';
    const is64 = head[4] === 2;
    const le = head[5] === 1;
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const type = u16(head, 16);
    if (type !== 2 && type !== 3) return 'not-elf'; // ET_EXEC, ET_DYN (static-pie)
    const phoff = is64 ? Number(le ? head.readBigUInt64LE(32) : head.readBigUInt64BE(32)) : u32(head, 28);
    const phentsize = u16(head, is64 ? 54 : 42);
    const phnum = Math.min(u16(head, is64 ? 56 : 44), 256);
    const table = Buffer.alloc(phentsize * phnum);
    await fd.read(f, table, 0, table.length, phoff);
    for (let i = 0; i < phnum; i++) if (u32(table, i * phentsize) === 3) return 'dynamic';
    return 'static';
  } finally {
    await fd.close(f);
  }
}
