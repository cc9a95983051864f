// A writer of cpio "newc" archives, the format the kernel unpacks an initramfs from (several archives
// may be concatenated, which is how an instance's settings are laid over its image's initramfs).
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;

export interface CpioEntry {
  /** relative, without a leading slash */
  name: string;
  /** file type and permission bits (S_IFDIR | 0o755, S_IFREG | 0o644, …) */
  mode: number;
  data?: Buffer;
}

const pad4 = (n: number) => (4 - (n % 4)) % 4;
const hex8 = (n: number) => n.toString(16).padStart(8, '0');

function header(ino: number, mode: number, size: number, nameSize: number, nlink: number): string {
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
  return `070701${[ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, nameSize, 0].map(hex8).join('')}`;
}

function record(ino: number, name: string, mode: number, data: Buffer, nlink: number): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`);
  const head = Buffer.from(header(ino, mode, data.length, nameBytes.length, nlink), 'ascii');
  return [head, nameBytes, Buffer.alloc(pad4(head.length + nameBytes.length)), data, Buffer.alloc(pad4(data.length))];
}

/** The archive of these entries, owned by root, with the trailer. Parents must come before children. */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  entries.forEach((e, i) => {
    if (!e.name || e.name.startsWith('/') || e.name.split('/').includes('..')) throw new Error(`bad cpio entry name ${JSON.stringify(e.name)}`);
    const isDir = (e.mode & 0o170000) === S_IFDIR;
    parts.push(...record(i + 1, e.name, e.mode, isDir ? Buffer.alloc(0) : (e.data ?? Buffer.alloc(0)), isDir ? 2 : 1));
  });
  parts.push(...record(0, 'TRAILER!!!', 0, Buffer.alloc(0), 1));
  return Buffer.concat(parts);
}
