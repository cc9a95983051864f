// The gateway's side of dependent devices on the device link (its device key): provisioning. Its
// reports of them ride its state report (`dependent_devices`, stateReports.ts) and their log lines
// its log uploads (`dependent_uuid`, deviceLogs.ts).
import { DependentProvisionedSchema, DependentProvisionSchema } from '../../shared/dependents.js';
import type { DeviceKeyAuth } from '../auth/deviceKeys.js';
import type { ServerApp, ServerContext } from '../app.js';

export const dependentLinkRoutes =
  (ctx: ServerContext, { deviceOf }: DeviceKeyAuth) =>
  async (app: ServerApp) => {
    app.post(
      '/device/v1/dependent-devices',
      {
        schema: {
          tags: ['device link'],
          summary: 'Provision a dependent device',
          description:
            'The gateway (`Authorization: Bearer <device key>`) provisions a dependent device into one of the dependent apps its target gives it. ' +
            'Idempotent by `uuid` (a gateway that provisioned offline sends its own uuid when the link returns): 201 for a new device, 200 for the ' +
            'same uuid again; 409 when the uuid is a device of another gateway or app; 404 for an app its target does not give it. Without a uuid ' +
            'the server makes one (32 hex digits), without a name an adjective-noun one.',
          security: [],
          body: DependentProvisionSchema,
          response: { 200: DependentProvisionedSchema, 201: DependentProvisionedSchema },
        },
      },
      async (req, reply) => {
        const { created, device } = await ctx.dependentDevices.provision(deviceOf(req).id, req.body);
        return reply.code(created ? 201 : 200).send(device);
      },
    );
  };
