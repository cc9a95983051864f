// Crash-safe file replacement: write a temp file, fsync it, rename over the target, fsync the folder.
import path from 'node:path';
import fs, { fd } from './fsAsync.js';

export async function writeFileAtomic(file: string, data: string, mode = 0o600): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  // fchmod: a temp file a crash left behind keeps its old mode through open()
  await synced(await fd.open(tmp, 'w', mode), async (f) => {
    await fd.fchmod(f, mode);
    await fs.writeFile(f, data);
  });
  await fs.rename(tmp, file);
  await synced(await fd.open(path.dirname(file), 'r')); // the folder, for its new entry
}

/** Runs `use` on the open file, then fsyncs and closes it (closed on failure too). */
async function synced(f: number, use?: (f: number) => Promise<void>): Promise<void> {
  try {
    await use?.(f);
    await fd.fsync(f);
  } finally {
    await fd.close(f);
  }
}
