// UniK's volume routes: list, describe, create (empty with ?size=, or filled from a multipart
// tarfile), delete, attach (?mount=, one of the instance's image's mount points) and detach.
import fsp from '../../shared/fsAsync.js';
import type { Api } from '../api/apiRequest.js';
import { UnikError } from './provider.js';
import { readUpload } from './uploads.js';
import { assertNewName, flag, TEXT, type UnikContext } from './unikContext.js';

type Query = Record<string, string | undefined>;

/** 1 TiB: beyond that a size is a typo */
const MAX_SIZE_MB = 1024 * 1024;

export function volumeRoutes(app: Api, ctx: UnikContext): void {
  app.get('/volumes', async () => (await ctx.volumes()).map((f) => f.item));
  app.get<{ Params: { name: string } }>('/volumes/:name', async (req) => (await ctx.volume(req.params.name)).item);

  app.post<{ Params: { name: string }; Querystring: Query }>('/volumes/:name', async (req, reply) => {
    const name = assertNewName('volume', req.params.name);
    let dataDir: string | undefined;
    try {
      let params: Query = { ...(formBody(req.body) ?? {}), ...req.query };
      if (req.headers['content-type']?.startsWith('multipart/form-data')) {
        const upload = await readUpload(req.raw, ctx.o.workDir, ctx.o.uploadLimitBytes, ctx.o.extractLimits);
        dataDir = upload.dir;
        params = { ...upload.fields, ...req.query };
      }
      if (flag(params.raw)) throw new UnikError('bad-request', 'raw volume data is not supported: send a tar as tarfile');
      const sizeMb = params.size === undefined || params.size === '' ? 0 : Number(params.size);
      if (!Number.isInteger(sizeMb) || sizeMb < 0 || sizeMb > MAX_SIZE_MB)
        throw new UnikError('bad-request', `size must be a whole number of MB (0 to ${MAX_SIZE_MB})`);
      if (!dataDir && sizeMb === 0) throw new UnikError('bad-request', 'an empty volume needs a size (?size=<MB>)');
      const provider = ctx.provider(params.provider);
      if ((await ctx.volumes()).some((f) => f.item.Name === name)) throw new UnikError('conflict', `a volume named ${name} exists`);
      const volume = await provider.createVolume({ name, sizeMb, ...(dataDir ? { dataDir } : {}) });
      ctx.changed();
      return reply.code(201).send(volume);
    } finally {
      if (dataDir) await fsp.rm(dataDir, { recursive: true, force: true });
    }
  });

  app.delete<{ Params: { name: string }; Querystring: Query }>('/volumes/:name', async (req, reply) => {
    const { item, provider } = await ctx.volume(req.params.name);
    await provider.deleteVolume(item, flag(req.query.force));
    ctx.changed();
    return reply.code(204).send();
  });

  app.post<{ Params: { name: string; instance: string }; Querystring: Query }>('/volumes/:name/attach/:instance', async (req, reply) => {
    const mount = req.query.mount;
    if (!mount) throw new UnikError('bad-request', 'mount is required (?mount=<mount point>)');
    const volume = await ctx.volume(req.params.name);
    const instance = await ctx.instance(req.params.instance);
    if (volume.provider !== instance.provider)
      throw new UnikError('bad-request', `volume ${volume.item.Name} and instance ${instance.item.Name} belong to different providers`);
    if (volume.item.Attachment) throw new UnikError('conflict', `volume ${volume.item.Name} is attached to instance ${volume.item.Attachment}`);
    const image = (await ctx.images()).find((f) => f.item.Id === instance.item.ImageId)?.item;
    const declared = image?.RunSpec.DeviceMappings.map((d) => d.MountPoint) ?? [];
    if (!declared.includes(mount))
      throw new UnikError(
        'bad-request',
        `instance ${instance.item.Name}'s image declares no mount point ${mount} (it declares: ${declared.join(', ') || 'none'})`,
      );
    await volume.provider.attachVolume(volume.item, instance.item, mount);
    ctx.changed();
    return reply.code(202).type(TEXT).send(volume.item.Name);
  });

  app.post<{ Params: { name: string } }>('/volumes/:name/detach', async (req, reply) => {
    const { item, provider } = await ctx.volume(req.params.name);
    if (!item.Attachment) throw new UnikError('bad-request', `volume ${item.Name} is not attached`);
    await provider.detachVolume(item);
    ctx.changed();
    return reply.code(202).type(TEXT).send(item.Name);
  });
}

/** A url-encoded form's fields (UniK's docs allow one for an empty volume). */
function formBody(body: unknown): Query | undefined {
  if (!body || typeof body !== 'object' || Array.isArray(body)) return undefined;
  return Object.fromEntries(Object.entries(body).filter(([, v]) => typeof v === 'string')) as Query;
}
