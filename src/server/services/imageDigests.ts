// The digest of an image tag, asked of its registry (the Registry HTTP API v2: a HEAD of the
// manifest, `Docker-Content-Digest`), with the registry's credentials (Basic, or the Bearer token
// its `WWW-Authenticate` points to). Only images that name a registry host are asked (nothing is
// sent to a registry the operator did not name); any failure or a slow answer is `undefined`: the
// caller falls back to a version hash.
import type { SecretBox } from '../auth/secretBox.js';

const TIMEOUT_MS = 5000;
const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
].join(', ');
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/** Credentials as the registry table keeps them: the password sealed. */
export interface SealedCredentials {
  url: string;
  username: string;
  password: string;
}

export class ImageDigests {
  constructor(private readonly secrets: SecretBox) {}

  /** `host[:port]/repo` and a tag → `sha256:…`, or undefined when the registry does not tell. */
  async resolve(image: string, tag: string, credentials?: SealedCredentials): Promise<string | undefined> {
    const slash = image.indexOf('/');
    const host = slash > 0 ? image.slice(0, slash) : '';
    if (!/[.:]|^localhost$/.test(host)) return undefined;
    const repo = image.slice(slash + 1);
    const basic = credentials?.username
      ? `Basic ${Buffer.from(`${credentials.username}:${this.secrets.open(credentials.password)}`).toString('base64')}`
      : undefined;
    const scheme = credentials?.url.match(/^(https?):\/\//i)?.[1]?.toLowerCase();
    for (const s of scheme ? [scheme] : ['https', 'http']) {
      try {
        return await manifestDigest(`${s}://${host}/v2/${repo}/manifests/${encodeURIComponent(tag)}`, repo, basic);
      } catch {
        // the next scheme, else no digest
      }
    }
    return undefined;
  }
}

async function manifestDigest(url: string, repo: string, basic: string | undefined): Promise<string | undefined> {
  const head = (authorization?: string) =>
    fetch(url, { method: 'HEAD', headers: { accept: ACCEPT, ...(authorization ? { authorization } : {}) }, signal: AbortSignal.timeout(TIMEOUT_MS) });
  let res = await head();
  if (res.status === 401) {
    const challenge = res.headers.get('www-authenticate') ?? '';
    if (/^basic/i.test(challenge)) res = await head(basic);
    else if (/^bearer/i.test(challenge)) {
      const token = await bearerToken(challenge, repo, basic);
      if (token) res = await head(`Bearer ${token}`);
    }
  }
  const digest = res.ok ? res.headers.get('docker-content-digest') : null;
  return digest && DIGEST_RE.test(digest) ? digest : undefined;
}

/** The token the challenge's realm gives for pulling `repo`. */
async function bearerToken(challenge: string, repo: string, basic: string | undefined): Promise<string | undefined> {
  const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
  if (!params.realm) return undefined;
  const realm = new URL(params.realm);
  if (params.service) realm.searchParams.set('service', params.service);
  realm.searchParams.set('scope', params.scope ?? `repository:${repo}:pull`);
  const res = await fetch(realm, { headers: basic ? { authorization: basic } : {}, signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!res.ok) return undefined;
  const body = (await res.json()) as { token?: string; access_token?: string };
  return body.token ?? body.access_token;
}
