// State reports of the device link: PATCH /device/v1/state (device key), the device's current state,
// which also moves the deployments of its releases along (devices/stateReports.ts).
import { StateReportSchema } from '../../shared/deviceLink.js';
import type { DeviceKeyAuth } from '../auth/deviceKeys.js';
import { applyReport } from '../devices/stateReports.js';
import type { ServerApp, ServerContext } from '../app.js';

/** A report's size bound (the agent sends what changed: far less). */
const MAX_REPORT_BYTES = 512 * 1024;

export const stateReportRoutes =
  (ctx: ServerContext, { deviceOf }: DeviceKeyAuth) =>
  async (app: ServerApp) => {
    app.patch(
      '/device/v1/state',
      {
        schema: {
          tags: ['device link'],
          description:
            'The device reports its current state (`Authorization: Bearer <device key>`): apps keyed by app id (the project), each with the release ' +
            'applied, the target release, the update status and the services (status, download progress, error). A report carries what changed: ' +
            "apps not named keep their last report; `null` removes an app. Only the apps of the device's target count, with its own releases " +
            "(listed for it, deployed on it, or given by its target): others are dropped. A gateway's `dependent_devices` (keyed by uuid) merge into " +
            "what is stored of its own dependent devices; others (unknown, or another gateway's) are ignored.",
          security: [],
          body: StateReportSchema,
        },
        bodyLimit: MAX_REPORT_BYTES,
      },
      async (req, reply) => {
        await applyReport(ctx.db, deviceOf(req).id, req.body);
        if (req.body.dependent_devices) await ctx.dependentDevices.report(deviceOf(req).id, req.body.dependent_devices);
        return reply.code(204).send();
      },
    );
  };
