// The promise forms of the file calls the agent makes, over fs's callback API. `node:fs/promises`
// loads FileHandle with readline, fs.watch and directory internals: ~0.5 MB of the agent's RSS
// (BENCHMARKS.md §3) for a dozen plain calls. Same names and signatures as in `node:fs/promises`.
import fs from 'node:fs';
import { promisify } from 'node:util';

export default {
  access: promisify(fs.access),
  appendFile: promisify(fs.appendFile),
  chmod: promisify(fs.chmod),
  link: promisify(fs.link),
  lstat: promisify(fs.lstat),
  mkdir: promisify(fs.mkdir),
  // (reading `fs.opendir` loads fs's directory internals: only when a folder is walked)
  opendir: (dir: string, options?: fs.OpenDirOptions) => promisify(fs.opendir)(dir, options ?? {}),
  readdir: promisify(fs.readdir),
  readFile: promisify(fs.readFile),
  readlink: promisify(fs.readlink),
  realpath: promisify(fs.realpath),
  rename: promisify(fs.rename),
  rm: promisify(fs.rm),
  rmdir: promisify(fs.rmdir),
  statfs: promisify(fs.statfs),
  unlink: promisify(fs.unlink),
  writeFile: promisify(fs.writeFile),
};

/** File descriptors, for what needs fsync or a partial read. */
export const fd = {
  open: promisify(fs.open),
  close: promisify(fs.close),
  fchmod: promisify(fs.fchmod),
  fstat: promisify(fs.fstat),
  fsync: promisify(fs.fsync),
  read: promisify(fs.read),
};
