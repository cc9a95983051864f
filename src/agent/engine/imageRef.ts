// Image references as the engine lists them (RepoTags / RepoDigests) vs as targets write them.
// `busybox`, `library/busybox:latest` and `docker.io/library/busybox:latest` are one image.

export interface ImageRef {
  /** registry host[:port], '' for Docker Hub */
  registry: string;
  /** repository path without registry, e.g. `library/busybox` */
  repository: string;
  tag?: string;
  digest?: string;
}

const HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

export function parseImageRef(ref: string): ImageRef {
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  let registry = '';
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = HUB.has(first) ? '' : first;
    rest = rest.slice(slash + 1);
  }
  if (registry === '' && !rest.includes('/')) rest = `library/${rest}`;
  if (!tag && !digest) tag = 'latest';
  return { registry, repository: rest, ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) };
}

export function repositoryOf(ref: string): string {
  const r = parseImageRef(ref);
  return r.registry ? `${r.registry}/${r.repository}` : r.repository;
}

/** Canonical form used for comparisons and as the key of pulls. */
export function normaliseImageRef(ref: string): string {
  const r = parseImageRef(ref);
  return `${repositoryOf(ref)}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}

/** The same repository with another tag (required tags are siblings of the service image). */
export function withTag(ref: string, tag: string): string {
  return `${repositoryOf(ref)}:${tag}`;
}

export interface EngineImage {
  id: string;
  repoTags: string[];
  repoDigests: string[];
}

/** The engine image a reference names, if present. Digest references match by digest only. */
export function findImage(images: readonly EngineImage[], ref: string): EngineImage | undefined {
  const want = parseImageRef(ref);
  const repo = repositoryOf(ref);
  if (want.digest) {
    return images.find((img) =>
      img.repoDigests.some((d) => {
        const [name, dg] = d.split('@');
        return dg === want.digest && repositoryOf(name!) === repo;
      }),
    );
  }
  const key = normaliseImageRef(ref);
  return images.find((img) => img.repoTags.some((t) => normaliseImageRef(t) === key));
}
