// Random ids and keys from the kernel's CSPRNG (/dev/urandom, where node:crypto's randomBytes draws
// from on Linux too) without loading node:crypto, which costs the agent ~1 MB of RSS.
import { fd } from '../shared/fsAsync.js';

export async function randomHex(bytes: number): Promise<string> {
  try {
    const f = await fd.open('/dev/urandom', 'r');
    try {
      const buf = Buffer.alloc(bytes);
      const { bytesRead } = await fd.read(f, buf, 0, bytes, null);
      if (bytesRead !== bytes) throw new Error('short read from /dev/urandom');
      return buf.toString('hex');
    } finally {
      await fd.close(f);
    }
  } catch {
    return (await import('node:crypto')).randomBytes(bytes).toString('hex');
  }
}
