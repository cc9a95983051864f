// The qemu provider's records, one JSON file per object under <dataDir>/unik/qemu/{images,instances,
// volumes}/<id>/, written atomically. An object is made in `<id>.tmp` and renamed into place when
// complete, so what a crash leaves half-made is a `.tmp` folder, removed at the next start.
import path from 'node:path';
import { writeFileAtomic } from '../../../shared/atomicFile.js';
import fs from '../../../shared/fsAsync.js';
import type { UnikImage } from '../provider.js';
import type { Accel } from './qemuArgs.js';
import type { PortForward } from './validate.js';

export interface ImageRecord {
  image: UnikImage;
  /** the executable's file name under /app */
  app: string;
  args: string[];
  mounts: string[];
}

export interface InstanceRecord {
  Id: string;
  Name: string;
  ImageId: string;
  Created: string;
  env: Record<string, string>;
  memoryMb: number;
  debug: boolean;
  ports: PortForward[];
  /** mount point → volume id; a detached mount point has none */
  mounts: Record<string, string>;
  /** the qemu process while it runs */
  pid?: number;
  accel?: Accel;
}

export interface VolumeRecord {
  Id: string;
  Name: string;
  SizeMb: number;
  Created: string;
}

/** The provider's name, which each object it gives carries (`Infrastructure`). */
export const INFRASTRUCTURE = 'qemu';

export type Kind = 'images' | 'instances' | 'volumes';
const FILE: Record<Kind, string> = { images: 'image.json', instances: 'instance.json', volumes: 'volume.json' };

/** Where the qemu provider keeps its records. */
export const qemuStoreRoot = (dataDir: string) => path.join(dataDir, 'unik', 'qemu');

export class Store {
  constructor(readonly root: string) {}

  dir(kind: Kind, id: string): string {
    return path.join(this.root, kind, id);
  }

  /** A fresh folder to make an object in; `commit` renames it into place. */
  async staging(kind: Kind, id: string): Promise<string> {
    const dir = `${this.dir(kind, id)}.tmp`;
    await fs.rm(dir, { recursive: true, force: true });
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  async commit(kind: Kind, id: string, record: object): Promise<void> {
    await writeFileAtomic(path.join(`${this.dir(kind, id)}.tmp`, FILE[kind]), JSON.stringify(record));
    await fs.rename(`${this.dir(kind, id)}.tmp`, this.dir(kind, id));
  }

  save(kind: Kind, id: string, record: object): Promise<void> {
    return writeFileAtomic(path.join(this.dir(kind, id), FILE[kind]), JSON.stringify(record));
  }

  async remove(kind: Kind, id: string): Promise<void> {
    // renamed first, so that a crash during the removal leaves a .tmp folder, not a half object
    const dir = this.dir(kind, id);
    await fs.rename(dir, `${dir}.tmp`).catch(() => undefined);
    await fs.rm(`${dir}.tmp`, { recursive: true, force: true });
  }

  /** Whether a record of a kind may exist, without reading any (an unreadable folder may hold some). */
  async any(kind: Kind): Promise<boolean> {
    try {
      return (await fs.readdir(path.join(this.root, kind))).some((name) => !name.endsWith('.tmp'));
    } catch (err) {
      return (err as NodeJS.ErrnoException).code !== 'ENOENT';
    }
  }

  /** Every complete record of a kind; leftovers of interrupted work are removed. */
  async load<T>(kind: Kind, onBad: (id: string, err: Error) => void): Promise<T[]> {
    const root = path.join(this.root, kind);
    await fs.mkdir(root, { recursive: true, mode: 0o700 });
    const records: T[] = [];
    for (const name of await fs.readdir(root)) {
      if (name.endsWith('.tmp')) {
        await fs.rm(path.join(root, name), { recursive: true, force: true });
        continue;
      }
      try {
        records.push(JSON.parse(await fs.readFile(path.join(root, name, FILE[kind]), 'utf8')) as T);
      } catch (err) {
        onBad(name, err as Error);
      }
    }
    return records;
  }
}
