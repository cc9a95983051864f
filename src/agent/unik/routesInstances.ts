// UniK's instance routes: list, describe, run, start, stop, delete, and logs (plain, or followed:
// what the instance prints streams until the client leaves, with a NUL byte while idle as UniK's
// daemon sends, which also finds a client that left; with delete=true the instance is removed then).
import type { Api } from '../api/apiRequest.js';
import { UnikError, type UnikVolume } from './provider.js';
import { assertNewName, flag, TEXT, type UnikContext } from './unikContext.js';

type Query = Record<string, string | undefined>;

const KEEPALIVE_MS = 2_000;

interface RunBody {
  InstanceName?: unknown;
  ImageName?: unknown;
  Mounts?: unknown;
  Env?: unknown;
  MemoryMb?: unknown;
  NoCleanup?: unknown;
  DebugMode?: unknown;
}

export function instanceRoutes(app: Api, ctx: UnikContext): void {
  app.get('/instances', async () => (await ctx.instances()).map((f) => f.item));
  app.get<{ Params: { id: string } }>('/instances/:id', async (req) => (await ctx.instance(req.params.id)).item);

  app.post('/instances/run', async (req, reply) => {
    const body = (req.body ?? {}) as RunBody;
    if (typeof body !== 'object' || Array.isArray(body)) throw new UnikError('bad-request', 'the body must be a JSON object');
    const name = assertNewName('instance', body.InstanceName);
    if (typeof body.ImageName !== 'string' || !body.ImageName) throw new UnikError('bad-request', 'ImageName is required');
    const env = stringMap('Env', body.Env);
    const mounts = stringMap('Mounts', body.Mounts);
    const memoryMb = body.MemoryMb ?? 0;
    if (typeof memoryMb !== 'number' || !Number.isInteger(memoryMb) || memoryMb < 0 || memoryMb > 1024 * 1024)
      throw new UnikError('bad-request', 'MemoryMb must be a whole number of MB (0: the default)');
    const { item: image, provider } = await ctx.image(body.ImageName);
    if ((await ctx.instances()).some((f) => f.item.Name === name)) throw new UnikError('conflict', `an instance named ${name} exists`);
    const declared = image.RunSpec.DeviceMappings.map((d) => d.MountPoint);
    const missing = declared.filter((m) => !(m in mounts));
    const extra = Object.keys(mounts).filter((m) => !declared.includes(m));
    if (missing.length)
      throw new UnikError('bad-request', `image ${image.Name} needs a volume at ${missing.join(', ')} (Mounts maps each mount point to a volume)`);
    if (extra.length)
      throw new UnikError('bad-request', `image ${image.Name} declares no mount point ${extra.join(', ')} (it declares: ${declared.join(', ') || 'none'})`);
    const volumes = new Map<string, UnikVolume>();
    for (const [point, key] of Object.entries(mounts)) {
      const found = await ctx.volume(key);
      if (found.provider !== provider)
        throw new UnikError('bad-request', `volume ${found.item.Name} belongs to provider ${found.provider.name}, the image to ${provider.name}`);
      if (found.item.Attachment) throw new UnikError('conflict', `volume ${found.item.Name} is attached to instance ${found.item.Attachment}`);
      if ([...volumes.values()].some((v) => v.Id === found.item.Id)) throw new UnikError('bad-request', `volume ${found.item.Name} is mapped twice`);
      volumes.set(point, found.item);
    }
    const instance = await provider.runInstance({ name, image, mounts: volumes, env, memoryMb, debugMode: body.DebugMode === true });
    ctx.changed();
    return reply.code(201).send(instance);
  });

  app.post<{ Params: { id: string } }>('/instances/:id/start', async (req, reply) => {
    const { item, provider } = await ctx.instance(req.params.id);
    await provider.startInstance(item);
    ctx.changed();
    return reply.code(200).type(TEXT).send('');
  });

  app.post<{ Params: { id: string } }>('/instances/:id/stop', async (req, reply) => {
    const { item, provider } = await ctx.instance(req.params.id);
    await provider.stopInstance(item);
    ctx.changed();
    return reply.code(200).type(TEXT).send('');
  });

  app.delete<{ Params: { id: string }; Querystring: Query }>('/instances/:id', async (req, reply) => {
    const { item, provider } = await ctx.instance(req.params.id);
    await provider.deleteInstance(item, flag(req.query.force));
    ctx.changed();
    return reply.code(204).send();
  });

  app.get<{ Params: { id: string }; Querystring: Query }>('/instances/:id/logs', async (req, reply) => {
    const { item, provider } = await ctx.instance(req.params.id);
    const text = await provider.logs(item);
    if (!flag(req.query.follow) && !flag(req.query.fallow)) return reply.type(TEXT).send(text);
    const deleteAfter = flag(req.query.delete);
    const res = reply.raw;
    reply.hijack();
    res.writeHead(200, { 'content-type': TEXT, 'cache-control': 'no-cache' });
    res.write(text);
    const stop = new AbortController();
    let lastWrite = Date.now();
    const keepAlive = setInterval(() => {
      if (Date.now() - lastWrite >= KEEPALIVE_MS) res.write(Buffer.from([0]));
    }, KEEPALIVE_MS);
    res.on('close', () => stop.abort());
    try {
      for await (const chunk of provider.followLogs(item, stop.signal)) {
        res.write(chunk);
        lastWrite = Date.now();
      }
    } catch (err) {
      if (!stop.signal.aborted) ctx.o.log.warn(`UniK: following the logs of ${item.Name} stopped: ${(err as Error).message}`);
    } finally {
      clearInterval(keepAlive);
      res.end();
      if (deleteAfter) {
        await provider.deleteInstance(item, true).then(
          () => ctx.changed(),
          (err: Error) => ctx.o.log.warn(`UniK: could not delete instance ${item.Name} after its logs: ${err.message}`),
        );
      }
    }
  });
}

function stringMap(field: string, value: unknown): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value) || Object.values(value).some((v) => typeof v !== 'string')) {
    throw new UnikError('bad-request', `${field} must be an object of strings`);
  }
  return value as Record<string, string>;
}
