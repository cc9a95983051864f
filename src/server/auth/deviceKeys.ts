// How the /device/ routes know their caller: a provisioning or device key sent as
// `Authorization: Bearer <key>`, stored only as its digest. A device key is checked in an onRequest
// hook, before the body is even parsed, and marks the device seen; its first use is recorded (from
// then on its registration cannot be repeated: routes/provisioning.ts).
import { createHash, randomBytes } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../../shared/errors.js';
import type { ServerDb } from '../db/database.js';

/** `last_seen_at` is written at most this often per device. */
const SEEN_THROTTLE_MS = 10_000;

export const digest = (key: string) => createHash('sha256').update(key).digest('hex');
export const newKey = (prefix: string) => `${prefix}_${randomBytes(32).toString('base64url')}`;
export const bearer = (req: FastifyRequest) => req.headers.authorization?.match(/^Bearer\s+(\S+)$/i)?.[1];

export interface AuthedDevice {
  id: string;
  last_seen_at: string | null;
  /** of its materialised target, when it has one */
  etag: string | null;
}

/**
 * Device-key authentication for a set of routes: `onRequest` (their hook) answers 401 without a
 * known device key and marks the device seen; `deviceOf` is the device, in the handlers.
 */
export function deviceKeyAuth(db: ServerDb) {
  const devices = new WeakMap<FastifyRequest, AuthedDevice>();
  return {
    onRequest: async (req: FastifyRequest): Promise<void> => {
      const key = bearer(req);
      if (!key) throw new UnauthorizedError('a device key is required: send "Authorization: Bearer <device key>"');
      const row = await db
        .selectFrom('device')
        .leftJoin('device_target', 'device_target.device_id', 'device.id')
        .select(['device.id', 'device.last_seen_at', 'device.key_used_at', 'device_target.etag'])
        .where('device.device_key_hash', '=', digest(key))
        .executeTakeFirst();
      if (!row) throw new UnauthorizedError('unknown device key');
      const { key_used_at, ...device } = row;
      devices.set(req, device);
      await markSeen(db, device, key_used_at === null);
    },
    deviceOf: (req: FastifyRequest): AuthedDevice => devices.get(req)!,
  };
}

export type DeviceKeyAuth = ReturnType<typeof deviceKeyAuth>;

/** Records that the device was heard from now, unless that was recorded within SEEN_THROTTLE_MS (its key's first use, always). */
async function markSeen(db: ServerDb, device: { id: string; last_seen_at: string | null }, firstUse: boolean): Promise<void> {
  const now = Date.now();
  if (!firstUse && device.last_seen_at && now - Date.parse(device.last_seen_at) < SEEN_THROTTLE_MS) return;
  const at = new Date(now).toISOString();
  await db
    .updateTable('device')
    .set({ last_seen_at: at, ...(firstUse ? { key_used_at: at } : {}) })
    .where('id', '=', device.id)
    .execute();
}
