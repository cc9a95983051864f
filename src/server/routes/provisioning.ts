// Provisioning: how devices join.
//
// - /provisioning-keys/ (user API): a provisioning key lets new devices register, fleet-wide or into
//   one project. Shown once; only its digest is stored.
// - POST /device/register (provisioning key): a device registers its uuid and type and receives its
//   id and its own device key (shown once, stored as a digest).
//
// A registration may be repeated (the agent crashed, or lost the answer, before it saved its key):
// the same uuid with the same provisioning key, as long as the device's key has never been used,
// answers 200 with a new key for that device, and the earlier one stops working. Anything else about
// a known uuid is a 409: another provisioning key, or a device that has used its key (it has it), so
// a provisioning key never takes over a device that is running — only one whose registration it made
// and that has not been heard from with its key.
import { randomUUID } from 'node:crypto';
import { Type, type TSchema } from '@sinclair/typebox';
import type { FastifyRequest } from 'fastify';
import { RegisteredSchema, RegistrationSchema } from '../../shared/deviceLink.js';
import { ConflictError, UnauthorizedError } from '../../shared/errors.js';
import { bearer, digest, newKey } from '../auth/deviceKeys.js';
import { nowIso } from '../db/database.js';
import type { ProvisioningGrant } from '../services/provisioning.js';
import type { ServerApp, ServerContext } from '../app.js';

const Nullable = <T extends TSchema>(t: T) => Type.Union([Type.Null(), t]);

const ProvisioningKey = Type.Object({ id: Type.Integer(), name: Type.String(), project: Nullable(Type.Integer()), created_at: Type.String() });
const NewProvisioningKey = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 200 }), project: Type.Optional(Nullable(Type.Integer({ minimum: 1 }))) },
  { additionalProperties: false },
);

/** Provisioning keys (operator API). */
export const provisioningKeyRoutes = (ctx: ServerContext) => async (app: ServerApp) => {
  const keys = ctx.provisioningKeys;
  const keyTags = ['provisioning'];
  app.get('/provisioning-keys/', { schema: { tags: keyTags, response: { 200: Type.Array(ProvisioningKey) } } }, async () => keys.list());
  app.post(
    '/provisioning-keys/',
    { schema: { tags: keyTags, body: NewProvisioningKey, response: { 201: Type.Composite([ProvisioningKey, Type.Object({ key: Type.String() })]) } } },
    async (req, reply) => reply.code(201).send(await keys.create(req.body.name, req.body.project ?? null)),
  );
  app.delete('/provisioning-keys/:id/', { schema: { tags: keyTags, params: Type.Object({ id: Type.Integer({ minimum: 1 }) }) } }, async (req, reply) => {
    await keys.revoke(req.params.id);
    return reply.code(204).send();
  });
};

/** Registration (device link): the one route that takes a provisioning key, not a device key. */
export const registrationRoutes = (ctx: ServerContext) => async (app: ServerApp) => {
  const provisioning = new WeakMap<FastifyRequest, ProvisioningGrant>();
  const provisioningAuth = async (req: FastifyRequest) => {
    const key = bearer(req);
    if (!key) throw new UnauthorizedError('a provisioning key is required: send "Authorization: Bearer <provisioning key>"');
    provisioning.set(req, await ctx.provisioningKeys.authenticate(key));
  };

  app.post(
    '/device/register',
    {
      // not a device key: it checks its provisioning key itself
      config: { public: true },
      onRequest: provisioningAuth,
      schema: {
        tags: ['device link'],
        description:
          'A new device registers with a provisioning key (`Authorization: Bearer <provisioning key>`); the answer holds its own device key, shown once. ' +
          'Repeated with the same uuid and provisioning key before the device has used its key: 200 with a new key for it (the earlier one stops working).',
        security: [],
        body: RegistrationSchema,
        response: { 200: RegisteredSchema, 201: RegisteredSchema },
      },
    },
    async (req, reply) => {
      const key = provisioning.get(req)!;
      const uuid = req.body.uuid.toLowerCase();
      const deviceKey = newKey('bsd');
      // a repeat: only by the key that made it, only while the device has not used its key
      const known = await ctx.devices.rekey(uuid, key.id, digest(deviceKey));
      if (known === null) throw alreadyRegistered(uuid);
      if (known !== undefined) return reply.code(200).send({ id: known, uuid, device_key: deviceKey });
      const id = randomUUID();
      const device = {
        id,
        unit_id: uuid,
        device_type: req.body.device_type,
        name: req.body.name || uuid.slice(0, 7),
        device_key_hash: digest(deviceKey),
        created_at: nowIso(),
        last_seen_at: nowIso(),
        agent_version: null,
        state_json: null,
        provisioning_key_id: key.id,
        key_used_at: null,
      };
      try {
        await ctx.devices.register(device, key.project_id);
      } catch (err) {
        // two registrations of one uuid at once: the second hits the unique index
        if (isUniqueViolation(err)) throw alreadyRegistered(uuid);
        throw err;
      }
      return reply.code(201).send({ id, uuid, device_key: deviceKey });
    },
  );
};

const alreadyRegistered = (uuid: string) =>
  new ConflictError(
    `a device with uuid ${uuid} is already registered (a registration is repeated only with the provisioning key that made it, ` +
      'and only until the device first uses its key)',
  );

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || /UNIQUE constraint failed/.test(e.message ?? '');
}
