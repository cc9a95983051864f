// What the UniK routes share: the providers, the names being built, and lookups across providers
// by name, id or a unique prefix of either (as UniK's GetUnikInstanceByPrefixOrName).
import type { EventLog } from '../eventLog.js';
import { Kept } from './kept.js';
import type { ExtractLimits } from './safeExtract.js';
import { UnikError, type UnikCompiler, type UnikImage, type UnikInstance, type UnikProvider, type UnikVolume } from './provider.js';

export interface UnikApiOptions {
  providers: UnikProvider[];
  /** the API's own folder: uploads and extracted sources while they are used */
  workDir: string;
  log: EventLog;
  /** what no_cleanup keeps (<data-dir>/unik/kept), and how much of it at most (bytes) */
  keptDir: string;
  keptLimitBytes: number;
  /** the largest upload accepted (bytes) */
  uploadLimitBytes: number;
  extractLimits: ExtractLimits;
  /** images, instances or volumes changed (the agent reports them) */
  onChange?: () => void;
}

export interface Found<T> {
  item: T;
  provider: UnikProvider;
}

type Named = { Id: string; Name: string };

export class UnikContext {
  /** names of images being built, with what cancels the build */
  readonly building = new Map<string, AbortController>();

  readonly kept: Kept;

  constructor(readonly o: UnikApiOptions) {
    this.kept = new Kept(o.keptDir, o.keptLimitBytes);
  }

  /** An image goes, and what no_cleanup kept of its sources with it. */
  async deleteImage({ item, provider }: Found<UnikImage>, force: boolean): Promise<void> {
    await provider.deleteImage(item, force);
    await this.kept.drop('images', item.Id);
  }

  async deleteVolume({ item, provider }: Found<UnikVolume>, force: boolean): Promise<void> {
    await provider.deleteVolume(item, force);
    await this.kept.drop('volumes', item.Id);
  }

  /** Kept files of images and volumes that are gone (deleted while the agent was down, or a crash in between). */
  async pruneKept(): Promise<void> {
    await this.kept.prune('images', new Set((await this.images()).map((f) => f.item.Id)));
    await this.kept.prune('volumes', new Set((await this.volumes()).map((f) => f.item.Id)));
  }

  changed(): void {
    this.o.onChange?.();
  }

  provider(name: unknown): UnikProvider {
    if (name === undefined || name === '') {
      if (this.o.providers.length === 1) return this.o.providers[0]!;
      throw new UnikError('bad-request', `provider is required (one of: ${this.providerNames()})`);
    }
    const p = this.o.providers.find((x) => x.name === name);
    if (!p) throw new UnikError('bad-request', `unknown provider ${String(name)} (available: ${this.providerNames() || 'none'})`);
    return p;
  }

  providerNames(): string {
    return this.o.providers.map((p) => p.name).join(', ');
  }

  compilerNames(): string[] {
    return this.o.providers.flatMap((p) => p.compilers.map((c) => compilerName(c, p)));
  }

  async images(): Promise<Found<UnikImage>[]> {
    return this.all((p) => p.listImages());
  }

  async instances(): Promise<Found<UnikInstance>[]> {
    return this.all((p) => p.listInstances());
  }

  async volumes(): Promise<Found<UnikVolume>[]> {
    return this.all((p) => p.listVolumes());
  }

  async image(key: string): Promise<Found<UnikImage>> {
    if (this.building.has(key)) throw new UnikError('conflict', `image ${key} is being built`);
    return pick('image', key, await this.images());
  }

  async instance(key: string): Promise<Found<UnikInstance>> {
    return pick('instance', key, await this.instances());
  }

  async volume(key: string): Promise<Found<UnikVolume>> {
    return pick('volume', key, await this.volumes());
  }

  private async all<T>(list: (p: UnikProvider) => Promise<T[]>): Promise<Found<T>[]> {
    const lists = await Promise.all(this.o.providers.map(async (provider) => (await list(provider)).map((item) => ({ item, provider }))));
    return lists.flat();
  }
}

export const compilerName = (c: UnikCompiler, p: UnikProvider) => `${c.base}-${c.lang}-${p.name}`;

/** An exact id or name first; else the one whose id or name starts with the key. */
export function pick<T extends Named>(what: string, key: string, all: Found<T>[]): Found<T> {
  const exact = all.filter((f) => f.item.Id === key || f.item.Name === key);
  if (exact.length === 1) return exact[0]!;
  if (exact.length > 1) throw new UnikError('bad-request', `${exact.length} ${what}s are named ${key}: use an id`);
  const byPrefix = key ? all.filter((f) => f.item.Id.startsWith(key) || f.item.Name.startsWith(key)) : [];
  if (byPrefix.length === 1) return byPrefix[0]!;
  if (byPrefix.length > 1)
    throw new UnikError('bad-request', `${key} matches ${byPrefix.length} ${what}s (${byPrefix.map((f) => f.item.Name).join(', ')}): give more of it`);
  throw new UnikError('not-found', `no ${what} ${key}`);
}

/** A name for a new image, instance or volume (also a registry repository name once lower-cased). */
export function assertNewName(what: string, name: unknown): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name) || /[._-]{2}|[._-]$/.test(name)) {
    throw new UnikError('bad-request', `${what} name ${JSON.stringify(name)} is invalid: use letters, digits and single . _ - between them (at most 128)`);
  }
  return name;
}

/** `true`/`false` as Go's %v writes them (also 1/0). */
export function flag(value: unknown): boolean {
  return value === true || value === 'true' || value === '1';
}

/** A text answer (UniK's client reads some answers as plain strings). */
export const TEXT = 'text/plain; charset=utf-8';
