// A release container's image and tags → the reference the device pulls, through its registry.
import { fail } from './releaseField.js';
import { TAG_PATTERN } from './releaseSchema.js';
import type { RegistryRecord, ReleaseContainer } from './releaseTarget.js';

const TAG_RE = new RegExp(TAG_PATTERN);
const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;
const HOST_RE = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]{1,5})?$/;
const PATH_COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const isHostComponent = (s: string) => s.includes('.') || s.includes(':') || s === 'localhost';

/**
 * `<registry host>/<image>:<tag>`: an image that names no registry host of its own is pulled
 * through the container's registry. A tag of the form `sha256:<hex>` pins a digest.
 */
export function imageReference(c: ReleaseContainer, registry: RegistryRecord | undefined, at: string): string {
  const image = c.image;
  if (!image || image.length > 255) fail(`${at}/image`, 'an image name of 1 to 255 characters is required');
  if (image.includes('@') || image.lastIndexOf(':') > image.lastIndexOf('/')) fail(`${at}/image`, `"${image}": give the tag in "tag", not in the image`);
  const parts = image.split('/');
  const ownHost = parts.length > 1 && isHostComponent(parts[0]!);
  if (ownHost && !HOST_RE.test(parts[0]!)) fail(`${at}/image`, `"${parts[0]}" is not a registry host`);
  for (const part of ownHost ? parts.slice(1) : parts) {
    if (!PATH_COMPONENT_RE.test(part)) fail(`${at}/image`, `"${image}" is not an image name: lowercase letters and digits, separated by "/", ".", "_" or "-"`);
  }
  const tag = c.tag;
  const digest = DIGEST_RE.test(tag);
  if (!digest && !TAG_RE.test(tag)) fail(`${at}/tag`, `"${tag}" is not a tag: up to 128 letters, digits, "_", "." or "-" (or sha256:<digest>)`);
  let prefix = '';
  if (registry && !ownHost) {
    const host = registryHost(registry.url);
    // (the url is not echoed: one stored before urls were checked may hold credentials)
    if (!host) fail(`${at}/registry`, `registry ${registry.id} has no usable address: correct its url`);
    prefix = `${host}/`;
  }
  return `${prefix}${image}${digest ? '@' : ':'}${tag}`;
}

/** `https://registry.example.com:5000/v2/` → `registry.example.com:5000`; a namespace path is kept. */
export function registryHost(url: string): string | undefined {
  const host = url
    .trim()
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, '')
    .replace(/\/+$/, '')
    .replace(/\/v[12]$/, '');
  const [first, ...path] = host.split('/');
  if (!first || !HOST_RE.test(first) || !path.every((p) => PATH_COMPONENT_RE.test(p))) return undefined;
  return host;
}

export function requiredTags(tags: string[], at: string): string[] {
  tags.forEach((t, i) => {
    if (!TAG_RE.test(t)) fail(`${at}/${i}`, `"${t}" is not a tag`);
  });
  return tags;
}
