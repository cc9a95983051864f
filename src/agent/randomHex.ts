// Random ids and keys from the kernel's CSPRNG (/dev/urandom, where node:crypto's randomBytes draws
// from on Linux too) without loading node:crypto, which costs the agent ~1 MB of RSS.
import { open } from 'node:fs/promises';

export async function randomHex(bytes: number): Promise<string> {
  try {
    const file = await open('/dev/urandom', 'r');
    try {
      const buf = Buffer.alloc(bytes);
      const { bytesRead } = await file.read(buf, 0, bytes, null);
      if (bytesRead !== bytes) throw new Error('short read from /dev/urandom');
      return buf.toString('hex');
    } finally {
      await file.close();
    }
  } catch {
    return (await import('node:crypto')).randomBytes(bytes).toString('hex');
  }
}
