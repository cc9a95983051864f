// UniK's volume routes: list, describe, create (empty with ?size=, or filled from a multipart
// tarfile: a tar, or with raw=true the volume's bytes as they are), delete, attach (?mount=, one of the instance's image's mount points) and detach.
import fsp from '../../shared/fsAsync.js';
import type { Api } from '../api/apiRequest.js';
import { UnikError, type UnikVolume } from './provider.js';
import { usage } from './kept.js';
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
    // the extracted tar, or with raw=true the bytes as they came
    let data: string | undefined;
    let raw = false;
    let release = () => {};
    let volume: UnikVolume;
    try {
      let params: Query = { ...(formBody(req.body) ?? {}), ...req.query };
      if (req.headers['content-type']?.startsWith('multipart/form-data')) {
        const isRaw = (fields: Query) => flag({ ...fields, ...req.query }.raw);
        const upload = await readUpload(req.raw, ctx.o.workDir, ctx.o.uploadLimitBytes, ctx.o.extractLimits, isRaw);
        data = upload.dir ?? upload.file;
        raw = upload.file !== undefined;
        params = { ...upload.fields, ...req.query };
      }
      const sizeMb = params.size === undefined || params.size === '' ? 0 : Number(params.size);
      if (!Number.isInteger(sizeMb) || sizeMb < 0 || sizeMb > MAX_SIZE_MB)
        throw new UnikError('bad-request', `size must be a whole number of MB (0 to ${MAX_SIZE_MB})`);
      if (!data && sizeMb === 0) throw new UnikError('bad-request', 'an empty volume needs a size (?size=<MB>)');
      const provider = ctx.provider(params.provider);
      if ((await ctx.volumes()).some((f) => f.item.Name === name)) throw new UnikError('conflict', `a volume named ${name} exists`);
      const keep = data !== undefined && flag(params.no_cleanup);
      if (keep) release = await ctx.kept.reserve(await usage(data!));
      volume = await provider.createVolume({ name, sizeMb, ...(data ? (raw ? { rawFile: data } : { dataDir: data }) : {}) });
      if (keep) {
        await ctx.kept.keep('volumes', volume.Id, data!);
        data = undefined;
      }
    } finally {
      release();
      if (data) await fsp.rm(data, { recursive: true, force: true });
    }
    ctx.changed();
    return reply.code(201).send(volume);
  });

  app.delete<{ Params: { name: string }; Querystring: Query }>('/volumes/:name', async (req, reply) => {
    await ctx.deleteVolume(await ctx.volume(req.params.name), flag(req.query.force));
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
