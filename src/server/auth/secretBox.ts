// Secrets kept in the database (registry passwords) are sealed with AES-256-GCM under the server
// key: a copy of the database alone does not reveal them. Every server node on one database must
// share the key (BOSUN_SERVER_KEY, or the same key file).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { writeFileAtomic } from '../../shared/atomicFile.js';

const VERSION = 'v1';

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  /** The key from `BOSUN_SERVER_KEY` (base64, 32 bytes) or the key file, created on first start. */
  static async load(keyFile: string, fromEnv = process.env.BOSUN_SERVER_KEY): Promise<SecretBox> {
    if (fromEnv) return new SecretBox(checkKey(Buffer.from(fromEnv, 'base64'), 'BOSUN_SERVER_KEY'));
    try {
      return new SecretBox(checkKey(Buffer.from((await fs.readFile(keyFile, 'utf8')).trim(), 'base64'), keyFile));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const key = randomBytes(32);
    await writeFileAtomic(keyFile, `${key.toString('base64')}\n`, 0o600);
    return new SecretBox(key);
  }

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64'), cipher.getAuthTag().toString('base64'), data.toString('base64')].join(':');
  }

  open(sealed: string): string {
    const [version, iv, tag, data] = sealed.split(':');
    if (version !== VERSION || !iv || !tag || data === undefined) throw new Error('not a sealed secret');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64'));
    decipher.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64')), decipher.final()]).toString('utf8');
  }
}

function checkKey(key: Buffer, where: string): Buffer {
  if (key.length !== 32) throw new Error(`${where}: the server key must be 32 bytes, base64-encoded`);
  return key;
}
