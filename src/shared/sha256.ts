// SHA-256 without node:crypto, whose load costs the agent ~1 MB of RSS although it only hashes
// configurations (once per target) and API keys. Same digests as createHash('sha256').
import { sha256 } from '@noble/hashes/sha2';
import { bytesToHex } from '@noble/hashes/utils';

export const sha256Hex = (text: string): string => bytesToHex(sha256(text));

/** Equal digests, compared in constant time (their length is not secret). */
export function digestsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export { sha256 };
