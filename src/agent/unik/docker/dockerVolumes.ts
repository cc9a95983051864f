// UniK volumes of the docker provider: engine volumes (local driver) labelled with their UniK
// identity and size. A volume from a tar is filled through a container that never runs, made from a
// helper image with nothing in it, by the engine's archive upload (the safely extracted data packed
// again); any failure removes the half-filled volume. Attachments are read from the instances'
// labels. Raw data (UniK's raw=true) becomes one file, `data`, at the volume's top. The local driver
// enforces no quota: the size is checked against the data at creation only, and an instance may
// write past it afterwards (a size-limited tmpfs would lose the data at a reboot; a loop-mounted
// ext image needs the engine to mount devices as root).
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import tarStream from 'tar-stream';
import { withDeadline } from '../../engine/deadline.js';
import { scopeLabel } from '../../engine/labels.js';
import { randomHex } from '../../randomHex.js';
import fsp from '../../../shared/fsAsync.js';
import { packDir, packFile } from '../packDir.js';
import { UnikError, type UnikVolume, type VolumeRequest } from '../provider.js';
import { HELPER, instanceMounts, mine, MiB, objectLabels, UNIK, unikFilter, volumeEngineName, toVolume } from './dockerLabels.js';
import { isoTime } from '../../../shared/isoTime.js';

const HELPER_IMAGE = 'bosun-unik/volume-helper:1';
const DATA_POINT = '/unik-volume-data';
/** where raw data lands in a docker volume */
export const RAW_FILE = 'data';

export async function volumesWithAttachments(docker: Docker, scope: string | undefined, containers: Docker.ContainerInfo[]): Promise<UnikVolume[]> {
  const { Volumes } = await withDeadline((d) => docker.listVolumes({ filters: unikFilter(scope), ...d }));
  const attachedTo = new Map<string, string>();
  for (const c of containers) for (const volumeId of Object.values(instanceMounts(c))) attachedTo.set(volumeId, c.Labels[UNIK.id]!);
  return (Volumes ?? []).filter((v) => mine(v.Labels, scope) && v.Labels[UNIK.id]).map((v) => toVolume(v, attachedTo.get(v.Labels[UNIK.id]!) ?? ''));
}

export async function createVolume(docker: Docker, scope: string | undefined, req: VolumeRequest): Promise<UnikVolume> {
  const dataBytes = req.rawFile ? (await fsp.lstat(req.rawFile)).size : req.dataDir ? await folderBytes(req.dataDir) : 0;
  const needMb = Math.max(1, Math.ceil(dataBytes / MiB));
  if (req.sizeMb > 0 && needMb > req.sizeMb) throw new UnikError('bad-request', `the data (${needMb} MB) does not fit a volume of ${req.sizeMb} MB`);
  const sizeMb = req.sizeMb > 0 ? req.sizeMb : needMb;
  const id = await randomHex(16);
  const created = isoTime();
  const name = volumeEngineName(id);
  await withDeadline((d) => docker.createVolume({ Name: name, Labels: objectLabels(scope, id, req.name, created, { [UNIK.sizeMb]: String(sizeMb) }), ...d }));
  try {
    if (req.rawFile) await fill(docker, scope, name, packFile(req.rawFile, RAW_FILE));
    else if (req.dataDir) await fill(docker, scope, name, packDir(req.dataDir));
  } catch (err) {
    await removeVolume(docker, id).catch(() => undefined);
    throw err;
  }
  return toVolume((await withDeadline((d) => docker.getVolume(name).inspect({ ...d }))) as Docker.VolumeInspectInfo, '');
}

export async function removeVolume(docker: Docker, id: string): Promise<void> {
  await withDeadline((d) => docker.getVolume(volumeEngineName(id)).remove({ ...d }));
}

async function fill(docker: Docker, scope: string | undefined, volume: string, data: Readable): Promise<void> {
  await helperImage(docker);
  const container = await withDeadline((d) =>
    docker.createContainer({
      Image: HELPER_IMAGE,
      Cmd: ['/never-run'],
      Labels: { [UNIK.kind]: HELPER, ...scopeLabel(scope) },
      HostConfig: { Binds: [`${volume}:${DATA_POINT}`] },
      ...d,
    }),
  );
  try {
    await withDeadline((d) => container.putArchive(data, { path: DATA_POINT, ...d }), 10 * 60_000);
  } catch (err) {
    const message = (err as Error).message;
    if (/no space left/i.test(message)) throw new UnikError('insufficient-storage', `no space left for the volume's data: ${message}`);
    throw new UnikError('failed', `could not fill the volume: ${message}`);
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

/** An empty image (FROM scratch) to make fill containers from; built once, labelled as UniK's helper. */
async function helperImage(docker: Docker): Promise<void> {
  const exists = await docker
    .getImage(HELPER_IMAGE)
    .inspect()
    .then(
      () => true,
      () => false,
    );
  if (exists) return;
  const context = tarStream.pack();
  context.entry({ name: 'Dockerfile' }, `FROM scratch\nLABEL ${UNIK.kind}=${HELPER}\n`);
  context.finalize();
  const stream = await docker.buildImage(context, { t: HELPER_IMAGE, rm: true, forcerm: true });
  const events = await new Promise<{ error?: string }[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (err, out) => (err ? reject(err) : resolve(out ?? []))),
  );
  const failed = events.find((e) => e.error);
  if (failed) throw new UnikError('failed', `could not make the volume helper image: ${failed.error}`);
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
    const full = `${dir}/${entry.name}`;
    if (entry.isDirectory()) total += await folderBytes(full);
    else if (entry.isFile()) total += (await fsp.lstat(full)).size;
  }
  return total;
}
