// A folder (one safeExtract made) as a tar stream, for the engine: an image build context or a
// volume's contents. Symlinks go in as symlinks, never followed; only files, folders and links exist
// there (safeExtract allows nothing else).
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import tarStream from 'tar-stream';
import fsp from '../../shared/fsAsync.js';

export interface ExtraFile {
  name: string;
  content: string;
}

export function packDir(dir: string, extra: ExtraFile[] = []): Readable {
  const pack = tarStream.pack();
  addAll(pack, dir, extra).then(
    () => pack.finalize(),
    (err: Error) => pack.destroy(err),
  );
  return pack;
}

async function addAll(pack: tarStream.Pack, dir: string, extra: ExtraFile[]): Promise<void> {
  for (const f of extra) await entry(pack, { name: f.name, mode: 0o644 }, Buffer.from(f.content));
  await addDir(pack, dir, '');
}

async function addDir(pack: tarStream.Pack, root: string, rel: string): Promise<void> {
  for (const name of (await fsp.readdir(path.join(root, rel))).sort()) {
    const relPath = rel ? `${rel}/${name}` : name;
    const full = path.join(root, relPath);
    const st = await fsp.lstat(full);
    if (st.isDirectory()) {
      await entry(pack, { name: `${relPath}/`, type: 'directory', mode: 0o755 });
      await addDir(pack, root, relPath);
    } else if (st.isSymbolicLink()) {
      await entry(pack, { name: relPath, type: 'symlink', linkname: await fsp.readlink(full) });
    } else if (st.isFile()) {
      await fileEntry(pack, relPath, full, st);
    }
  }
}

function entry(pack: tarStream.Pack, header: tarStream.Headers, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => pack.entry(header, body, (err) => (err ? reject(err) : resolve())));
}

function fileEntry(pack: tarStream.Pack, name: string, full: string, st: fs.Stats, mode = st.mode & 0o755): Promise<void> {
  return new Promise((resolve, reject) => {
    const sink = pack.entry({ name, size: st.size, mode }, (err) => (err ? reject(err) : resolve()));
    const source = fs.createReadStream(full);
    source.on('error', reject);
    source.pipe(sink);
  });
}

/** One file as a tar stream holding just it, under `name` (a raw volume's data for the engine). */
export function packFile(file: string, name: string): Readable {
  const pack = tarStream.pack();
  fsp
    .lstat(file)
    // readable by an app of any user, as a file from a tar would usually be
    .then((st) => fileEntry(pack, name, file, st, 0o644))
    .then(
      () => pack.finalize(),
      (err: Error) => pack.destroy(err),
    );
  return pack;
}
