// UniK's image routes: list, describe, build (multipart upload), delete, and the hub (push, pull,
// remote-delete). A name is built once at a time; deleting or replacing it meanwhile is refused.
import { parse as shellParse } from 'shell-quote';
import fsp from '../../shared/fsAsync.js';
import type { Api } from '../api/apiRequest.js';
import { UnikError, type HubConfig, type UnikCompiler, type UnikImage, type UnikProvider } from './provider.js';
import { usage } from './kept.js';
import { readUpload } from './uploads.js';
import { assertNewName, flag, type UnikContext } from './unikContext.js';

type Query = Record<string, string | undefined>;

export function imageRoutes(app: Api, ctx: UnikContext): void {
  app.get('/images', async () => (await ctx.images()).map((f) => f.item));
  app.get<{ Params: { name: string } }>('/images/:name', async (req) => (await ctx.image(req.params.name)).item);

  app.post<{ Params: { name: string }; Querystring: Query }>('/images/:name/create', async (req, reply) => {
    const name = assertNewName('image', req.params.name);
    if (ctx.building.has(name)) throw new UnikError('conflict', `image ${name} is being built already`);
    const abort = new AbortController();
    ctx.building.set(name, abort);
    // a client that leaves before the answer cancels the build
    reply.raw.on('close', () => reply.raw.writableFinished || abort.abort());
    let sourceDir: string | undefined;
    let release = () => {};
    let image: UnikImage;
    try {
      if (!req.headers['content-type']?.startsWith('multipart/form-data'))
        throw new UnikError('bad-request', 'the build needs a multipart/form-data body with the tarfile');
      const upload = await readUpload(req.raw, ctx.o.workDir, ctx.o.uploadLimitBytes, ctx.o.extractLimits);
      sourceDir = upload.dir;
      if (!sourceDir) throw new UnikError('bad-request', 'the tarfile part is missing');
      const params: Query = { ...upload.fields, ...req.query };
      const provider = ctx.provider(params.provider);
      const compiler = findCompiler(provider, params);
      const existing = (await ctx.images()).filter((f) => f.item.Name === name);
      if (existing.length && !flag(params.force)) throw new UnikError('conflict', `image ${name} exists (build with force to replace it)`);
      for (const old of existing) await assertUnused(ctx, old.item.Id, name);
      const keep = flag(params.no_cleanup);
      if (keep) release = await ctx.kept.reserve(await usage(sourceDir));
      image = await provider.buildImage({
        name,
        compiler,
        sourceDir,
        args: parseArgs(params.args),
        mounts: parseMounts(params.mounts),
        signal: abort.signal,
      });
      if (keep) {
        await ctx.kept.keep('images', image.Id, sourceDir);
        sourceDir = undefined;
      }
      for (const old of existing) await ctx.deleteImage(old, false);
    } finally {
      release();
      ctx.building.delete(name);
      if (sourceDir) await fsp.rm(sourceDir, { recursive: true, force: true });
    }
    ctx.changed();
    return reply.code(201).send(image);
  });

  app.delete<{ Params: { name: string }; Querystring: Query }>('/images/:name', async (req, reply) => {
    await ctx.deleteImage(await ctx.image(req.params.name), flag(req.query.force));
    ctx.changed();
    return reply.code(204).send();
  });

  app.post<{ Params: { name: string } }>('/images/push/:name', async (req, reply) => {
    const hub = hubConfig(req.body);
    const { item, provider } = await ctx.image(req.params.name);
    await hubOf(provider).pushImage!(item, hub);
    return reply.code(202).send();
  });

  app.post<{ Params: { name: string }; Querystring: Query }>('/images/pull/:name', async (req, reply) => {
    const hub = hubConfig(req.body);
    const name = assertNewName('image', req.params.name);
    const provider = hubOf(ctx.provider(req.query.provider));
    if (ctx.building.has(name)) throw new UnikError('conflict', `image ${name} is being built`);
    const existing = (await ctx.images()).filter((f) => f.item.Name === name);
    if (existing.length && !flag(req.query.force)) throw new UnikError('conflict', `image ${name} exists (pull with force to replace it)`);
    for (const old of existing) {
      await assertUnused(ctx, old.item.Id, name);
      await ctx.deleteImage(old, false);
    }
    const image = await provider.pullImage!(name, hub);
    ctx.changed();
    return reply.code(202).send(image);
  });

  app.post<{ Params: { name: string } }>('/images/remote-delete/:name', async (req, reply) => {
    const hub = hubConfig(req.body);
    const name = assertNewName('image', req.params.name);
    const providers = ctx.o.providers.filter((p) => p.remoteDeleteImage);
    if (!providers.length) throw new UnikError('bad-request', 'no provider here has a hub');
    await hubOf(providers[0]!).remoteDeleteImage!(name, hub);
    return reply.code(202).send();
  });
}

/** `compiler=base-lang-provider` (older clients) or `base` and `lang`. */
function findCompiler(provider: UnikProvider, params: Query): UnikCompiler {
  let { base, lang } = params;
  if (params.compiler) {
    const parts = params.compiler.split('-');
    if (parts.length !== 3 || parts[2] !== provider.name)
      throw new UnikError('bad-request', `compiler ${params.compiler} is not base-language-${provider.name}`);
    [base, lang] = parts as [string, string];
  }
  const compiler = provider.compilers.find((c) => c.base === base && c.lang === lang);
  if (!compiler) {
    const known = provider.compilers.map((c) => `${c.base}-${c.lang}-${provider.name}`).join(', ');
    throw new UnikError(
      'bad-request',
      `provider ${provider.name} has no compiler for base ${base ?? '(none)'} and language ${lang ?? '(none)'} (available: ${known})`,
    );
  }
  return compiler;
}

/** The app's arguments, one string split as a shell would (quotes kept together; no expansion, no operators). */
export function parseArgs(args: string | undefined): string[] {
  if (!args?.trim()) return [];
  const parsed = shellParse(args, (key) => `$${key}`);
  const words = parsed.filter((w): w is string => typeof w === 'string');
  if (words.length !== parsed.length) throw new UnikError('bad-request', `args ${JSON.stringify(args)} holds shell operators; give plain words`);
  return words;
}

/** Comma-separated absolute mount points, each once. */
export function parseMounts(mounts: string | undefined): string[] {
  const list = (mounts ?? '')
    .split(',')
    .map((m) => m.trim())
    .filter(Boolean);
  for (const m of list) {
    if (!/^\/[^\0:]*$/.test(m) || m.split('/').includes('..') || m === '/')
      throw new UnikError('bad-request', `mount point ${JSON.stringify(m)} must be an absolute folder path`);
  }
  if (new Set(list).size !== list.length) throw new UnikError('bad-request', `mount points repeat: ${list.join(',')}`);
  return list;
}

async function assertUnused(ctx: UnikContext, imageId: string, name: string): Promise<void> {
  const users = (await ctx.instances()).filter((f) => f.item.ImageId === imageId);
  if (users.length) throw new UnikError('conflict', `image ${name} is used by instance(s) ${users.map((f) => f.item.Name).join(', ')}`);
}

function hubOf(provider: UnikProvider): UnikProvider {
  if (!provider.pushImage || !provider.pullImage || !provider.remoteDeleteImage) throw new UnikError('bad-request', `provider ${provider.name} has no hub`);
  return provider;
}

/** `{URL, Username, Password}` (UniK's HubConfig) or `{url, user, pass}` (its docs). */
export function hubConfig(body: unknown): HubConfig {
  const b = (body ?? {}) as Record<string, unknown>;
  const url = b.URL ?? b.url;
  const username = b.Username ?? b.user ?? '';
  const password = b.Password ?? b.pass ?? '';
  if (typeof url !== 'string' || !url || typeof username !== 'string' || typeof password !== 'string') {
    throw new UnikError('bad-request', 'the body must be the hub: {"URL": "host[:port]", "Username": "…", "Password": "…"}');
  }
  return { url, username, password };
}
