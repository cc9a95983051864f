// What a build or a volume create with `no_cleanup=true` keeps, as UniK keeps the files sent to it:
// the extracted sources (or a raw volume's bytes) under <data-dir>/unik/kept/{images,volumes}/<id>,
// removed with the image or volume. Bounded in total: a keep that would pass the limit is refused
// (507) before anything is built. Only the API writes there (no container can), yet nothing in it is
// followed: sizes are counted with lstat.
import path from 'node:path';
import fsp from '../../shared/fsAsync.js';
import { UnikError } from './provider.js';

export type KeptKind = 'images' | 'volumes';

export class Kept {
  /** bytes promised to builds under way that keep what they were sent */
  private reserved = 0;

  constructor(
    readonly root: string,
    readonly limitBytes: number,
  ) {}

  /** Room for `bytes` more, held until `release`; a 507 when the kept total would pass the limit. */
  async reserve(bytes: number): Promise<() => void> {
    const used = (await usage(this.root)) + this.reserved;
    if (used + bytes > this.limitBytes)
      throw new UnikError(
        'insufficient-storage',
        `no_cleanup: keeping ${bytes} more bytes would pass the ${this.limitBytes} bytes kept at most (${used} kept): ` +
          'delete images or volumes made with no_cleanup',
      );
    this.reserved += bytes;
    let held = true;
    return () => {
      if (held) this.reserved -= bytes;
      held = false;
    };
  }

  /** Moves `source` (a folder or file under the API's work folder, same filesystem) to the object's place. */
  async keep(kind: KeptKind, id: string, source: string): Promise<void> {
    await fsp.mkdir(path.join(this.root, kind), { recursive: true, mode: 0o700 });
    await fsp.rm(this.place(kind, id), { recursive: true, force: true });
    await fsp.rename(source, this.place(kind, id));
  }

  drop(kind: KeptKind, id: string): Promise<void> {
    return fsp.rm(this.place(kind, id), { recursive: true, force: true });
  }

  /** Removes what belongs to no image or volume any more (one deleted while the agent was down, or a crash between). */
  async prune(kind: KeptKind, ids: ReadonlySet<string>): Promise<void> {
    const names = await fsp.readdir(path.join(this.root, kind)).catch(() => [] as string[]);
    for (const name of names) if (!ids.has(name)) await fsp.rm(path.join(this.root, kind, name), { recursive: true, force: true });
  }

  place(kind: KeptKind, id: string): string {
    if (!/^[A-Za-z0-9_-]+$/.test(id)) throw new UnikError('failed', `bad object id ${id}`);
    return path.join(this.root, kind, id);
  }
}

/** The bytes under `p`, never following a link (a missing path is 0). */
export async function usage(p: string): Promise<number> {
  const st = await fsp.lstat(p).catch(() => undefined);
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const name of await fsp.readdir(p)) total += await usage(path.join(p, name));
  return total;
}
