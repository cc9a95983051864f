// The target long poll of the device link: GET /device/v1/state (device key) answers the device's
// target state with its ETag; `If-None-Match` → 304; `?wait=<s>` holds the request until the target
// changes (on any server node: the notifier) or the time is up.
import { Type } from '@sinclair/typebox';
import type { FastifyReply } from 'fastify';
import { UnauthorizedError } from '../../shared/errors.js';
import { TargetStateSchema } from '../../shared/targetState.js';
import type { DeviceKeyAuth } from '../auth/deviceKeys.js';
import { StatusError } from '../httpErrors.js';
import { dropAnswer, HeldRequests, waitFor } from '../longPoll.js';
import { BatchedLoader } from '../targets/batchedLoader.js';
import type { ServerApp, ServerContext } from '../app.js';

export const MAX_WAIT_S = 300;

type StoredTarget = { etag: string; target_json: string };

export const deviceTargetRoutes =
  (ctx: ServerContext, { deviceOf }: DeviceKeyAuth) =>
  async (app: ServerApp) => {
    const { presence } = ctx;
    const targetRows = new BatchedLoader((ids: string[]) => ctx.targets.stored(ids));
    /** the device's stored target; a device deleted meanwhile has none (its key is gone: 401) */
    const storedTarget = async (deviceId: string): Promise<StoredTarget> => {
      const row = await targetRows.load(deviceId);
      if (!row) throw new UnauthorizedError('unknown device key');
      return row;
    };
    const polls = new HeldRequests();
    app.addHook('preClose', async () => {
      // held polls answer now (304: the device asks again, of another node or after the restart),
      // before the server stops listening and waits for its connections to go idle
      await polls.close();
    });

    app.get(
      '/device/v1/state',
      {
        schema: {
          tags: ['device link'],
          summary: "Get (or wait for) the device's target state",
          description:
            "The device's target state (`Authorization: Bearer <device key>`) with its ETag. With `If-None-Match` equal to it: 304, or with `wait`, " +
            'held until the target changes (200) or `wait` seconds pass (304).',
          security: [],
          querystring: Type.Object({ wait: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_WAIT_S })) }),
          headers: Type.Object({ 'if-none-match': Type.Optional(Type.String()) }),
          // (the stored JSON is sent as it is: a string body is never re-serialised)
          response: { 200: TargetStateSchema, 304: Type.Null({ description: 'the target is the one the device has' }) },
        },
      },
      async (req, reply) => {
        const device = deviceOf(req);
        const known = etagsOf(req.headers['if-none-match']);
        const etag = device.etag ?? (await ensureTarget(ctx, device.id));
        if (!matches(known, etag)) return sendTarget(reply, ctx, await storedTarget(device.id));
        const waitS = req.query.wait ?? 0;
        if (waitS === 0 || polls.closing) return notModified(reply, etag);

        const poll = polls.hold(req, reply);
        presence.hold(device.id);
        let changed: StoredTarget | undefined;
        try {
          changed = await waitFor(ctx.notifier, device.id, Date.now() + waitS * 1000, poll.signal, async () => {
            const now = await storedTarget(device.id);
            return matches(known, now.etag) ? undefined : now;
          });
        } finally {
          presence.release(device.id);
          poll.release();
        }
        if (poll.hungUp()) return dropAnswer(reply); // nobody to answer
        if (changed) return sendTarget(reply, ctx, changed);
        return notModified(reply, etag);
      },
    );
  };

/** The tags of `If-None-Match` (quotes and weak markers dropped). */
export function etagsOf(header: string | undefined): string[] {
  if (!header) return [];
  return header
    .split(',')
    .map((t) =>
      t
        .trim()
        .replace(/^W\//, '')
        .replace(/^"(.*)"$/, '$1'),
    )
    .filter(Boolean);
}

const matches = (known: string[], etag: string) => known.includes(etag) || known.includes('*');

const notModified = (reply: FastifyReply, etag: string) => reply.code(304).header('etag', `"${etag}"`).header('cache-control', 'no-cache').send();

/**
 * A device without a materialised target (none was built yet) gets one now; one whose target cannot
 * be built (deviceTargets.ts: a registry row stored unchecked) is told to come back (503).
 */
async function ensureTarget(ctx: ServerContext, deviceId: string): Promise<string> {
  await ctx.targets.refresh([deviceId]);
  const etag = await ctx.targets.etag(deviceId);
  if (etag !== undefined) return etag;
  const targetError = await ctx.devices.targetError(deviceId);
  if (targetError === undefined) throw new UnauthorizedError('unknown device key'); // deleted meanwhile
  throw new StatusError(503, `the target of this device cannot be built now: ${targetError ?? 'it changed meanwhile'}`);
}

/** The stored target with its registry passwords opened: the body is exactly the TargetState JSON; the ETag, the stored form's. */
const sendTarget = (reply: FastifyReply, ctx: ServerContext, row: StoredTarget) =>
  reply
    .code(200)
    .header('etag', `"${row.etag}"`)
    .header('cache-control', 'no-cache')
    .type('application/json; charset=utf-8')
    .send(ctx.targets.served(row.target_json));
