// GET /dongle/devices/events/: the fleet's live view (devices/fleetFeed.ts) for the dashboard, with the
// operator API's token like every other read. Browsers read it with fetch (EventSource cannot send
// the Authorization header), so no token ever travels in a URL.
import { Type } from '@sinclair/typebox';
import { FleetFeed, type FleetTimings } from '../devices/fleetFeed.js';
import type { ServerApp, ServerContext } from '../app.js';
import { Device, deviceOut } from './devices.js';

export const fleetEventRoutes =
  (ctx: ServerContext, timings: FleetTimings = {}) =>
  async (app: ServerApp) => {
    const feed = new FleetFeed({ ...timings, list: async () => (await ctx.devices.list()).map(deviceOut), onError: (err) => app.log.error(err) });
    app.addHook('preClose', () => feed.close());
    app.get(
      '/dongle/devices/events/',
      {
        schema: {
          tags: ['dongle'],
          summary: "The fleet's live view (Server-Sent Events)",
          description:
            'A `text/event-stream`: first `event: snapshot` with every device (`data`: the array `GET /dongle/devices/` answers), then ' +
            "`event: device` (`data`: one device) whenever a device's listing changes (online state, agent version, releases, state report, " +
            'download progress, name, projects) and `event: removed` (`data`: `{"id"}`) when one is deleted; a `: keep-alive` comment every 15 s. ' +
            'Changes are looked for once a second (less often for a fleet that takes longer to read). ' +
            'A client that falls more than 1 MiB behind gets a new `snapshot` instead of the deltas it ' +
            'missed. The stream ends when its token is revoked or expires. Send the token in the `Authorization` header (read it with `fetch`).',
          response: { 200: { description: 'the event stream', content: { 'text/event-stream': { schema: Type.Array(Device) } } } },
        },
      },
      async (req, reply) => {
        const token = req.headers.authorization!.trim().split(/\s+/)[1]!;
        await feed.serve(reply, async () => (await ctx.tokens.verify(token)) !== undefined);
        return reply;
      },
    );
  };
