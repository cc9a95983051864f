// UniK's hub for the docker provider: an OCI registry. `{URL, Username, Password}` name the registry
// (`host[:port]`, an http:// or https:// scheme allowed) and its credentials; an image named `web`
// is `<host>/unik/docker/web:latest` there. The registry tag lives only for the push or pull: the
// local image keeps its own tag, and its UniK identity travels in its labels.
import type Docker from 'dockerode';
import { withDeadline } from '../../engine/deadline.js';
import { UnikError, type HubConfig, type UnikImage } from '../provider.js';
import { imageTag, UNIK } from './dockerLabels.js';

const HUB_TIMEOUT_MS = 30 * 60_000;

interface HubRef {
  host: string;
  repo: string;
  /** http for loopback and an explicit http://, else https */
  scheme: 'http' | 'https';
}

export function hubRef(hub: HubConfig, name: string): HubRef {
  const m = hub.url.trim().match(/^(?:(https?):\/\/)?([^/\s]+)\/?$/i);
  if (!m) throw new UnikError('bad-request', `hub URL ${JSON.stringify(hub.url)} is not a registry address (host[:port])`);
  const repoName = name.toLowerCase();
  if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(repoName)) throw new UnikError('bad-request', `image name ${name} cannot be a registry repository name`);
  const host = m[2]!.toLowerCase();
  const loopback = /^(127\.|localhost(:|$)|\[::1\])/.test(host);
  const scheme = m[1] ? (m[1].toLowerCase() as 'http' | 'https') : loopback ? 'http' : 'https';
  return { host, repo: `unik/docker/${repoName}`, scheme };
}

const auth = (hub: HubConfig, ref: HubRef) => ({ username: hub.username, password: hub.password, serveraddress: ref.host });

export async function pushImage(docker: Docker, image: UnikImage, hub: HubConfig): Promise<void> {
  const ref = hubRef(hub, image.Name);
  const local = docker.getImage(imageTag(image.Id));
  await withDeadline((d) => local.tag({ repo: `${ref.host}/${ref.repo}`, tag: 'latest', ...d }));
  const remote = docker.getImage(`${ref.host}/${ref.repo}:latest`);
  try {
    await follow(docker, await withDeadline((d) => remote.push({ authconfig: auth(hub, ref), ...d }), HUB_TIMEOUT_MS), `push of ${image.Name}`);
  } finally {
    await remote.remove({ noprune: true }).catch(() => undefined);
  }
}

/** Pulls the image of that name and gives it its local tag; its UniK id. */
export async function pullImage(docker: Docker, name: string, hub: HubConfig): Promise<string> {
  const ref = hubRef(hub, name);
  const remoteName = `${ref.host}/${ref.repo}:latest`;
  const stream = await withDeadline((d) => docker.pull(remoteName, { authconfig: auth(hub, ref), ...d }), HUB_TIMEOUT_MS).catch((err: Error) => {
    throw hubError(`pull of ${name}`, err.message);
  });
  await follow(docker, stream, `pull of ${name}`);
  const remote = docker.getImage(remoteName);
  try {
    const info = await remote.inspect();
    const id = info.Config.Labels?.[UNIK.id];
    if (!id || info.Config.Labels?.[UNIK.kind] !== 'docker') throw new UnikError('bad-request', `${remoteName} is no UniK image of the docker provider`);
    const [repo, tag] = imageTag(id).split(':') as [string, string];
    await remote.tag({ repo, tag });
    return id;
  } finally {
    await remote.remove({ noprune: true }).catch(() => undefined);
  }
}

/** Deletes the image's manifest from the registry (the registry must allow deletes). */
export async function remoteDeleteImage(name: string, hub: HubConfig): Promise<void> {
  const ref = hubRef(hub, name);
  const base = `${ref.scheme}://${ref.host}/v2/${ref.repo}/manifests`;
  const headers = { authorization: `Basic ${Buffer.from(`${hub.username}:${hub.password}`).toString('base64')}` };
  const accept = [
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.docker.distribution.manifest.v2+json',
  ].join(', ');
  const head = await fetch(`${base}/latest`, { method: 'HEAD', headers: { ...headers, accept }, signal: AbortSignal.timeout(60_000) });
  if (head.status === 404) throw new UnikError('not-found', `image ${name} is not on the hub`);
  if (!head.ok) throw hubError(`remote delete of ${name}`, `the registry answered ${head.status}`);
  const digest = head.headers.get('docker-content-digest');
  if (!digest) throw new UnikError('failed', `the registry gave no digest for ${name}`);
  const del = await fetch(`${base}/${digest}`, { method: 'DELETE', headers, signal: AbortSignal.timeout(60_000) });
  if (!del.ok) throw hubError(`remote delete of ${name}`, `the registry answered ${del.status}${del.status === 405 ? ' (deletes are disabled there)' : ''}`);
}

async function follow(docker: Docker, stream: NodeJS.ReadableStream, what: string): Promise<void> {
  const events = await new Promise<{ error?: string; errorDetail?: { message?: string } }[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (err, out) => (err ? reject(err) : resolve(out ?? []))),
  );
  const failure = events.find((e) => e.error || e.errorDetail);
  if (failure) throw hubError(what, failure.errorDetail?.message ?? failure.error ?? 'unknown error');
}

function hubError(what: string, message: string): UnikError {
  if (/unauthorized|authentication|denied|401|403/i.test(message)) return new UnikError('bad-request', `${what}: the hub refused the credentials: ${message}`);
  if (/not found|manifest unknown|404/i.test(message)) return new UnikError('not-found', `${what}: not on the hub: ${message}`);
  if (/no space left/i.test(message)) return new UnikError('insufficient-storage', `${what}: ${message}`);
  return new UnikError('failed', `${what} failed: ${message}`);
}
