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
import { ConflictError, NotFoundError, UnauthorizedError, ValidationError } from '../../shared/errors.js';
import { bearer, digest, newKey } from '../auth/deviceKeys.js';
import { nowIso } from '../db/database.js';
import type { ServerApp, ServerContext } from '../app.js';

const Nullable = <T extends TSchema>(t: T) => Type.Union([Type.Null(), t]);

const ProvisioningKey = Type.Object({ id: Type.Integer(), name: Type.String(), project: Nullable(Type.Integer()), created_at: Type.String() });
const NewProvisioningKey = Type.Object(
  { name: Type.String({ minLength: 1, maxLength: 200 }), project: Type.Optional(Nullable(Type.Integer({ minimum: 1 }))) },
  { additionalProperties: false },
);

interface ProvisioningKeyRow {
  id: number;
  project_id: number | null;
}

/** Provisioning keys (operator API). */
export const provisioningKeyRoutes = (ctx: ServerContext) => async (app: ServerApp) => {
  const { db } = ctx;
  const keyTags = ['provisioning'];
  app.get('/provisioning-keys/', { schema: { tags: keyTags, response: { 200: Type.Array(ProvisioningKey) } } }, async () => {
    const rows = await db
      .selectFrom('provisioning_key')
      .select(['id', 'name', 'project_id', 'created_at'])
      .where('revoked_at', 'is', null)
      .orderBy('id')
      .execute();
    return rows.map(({ project_id, ...r }) => ({ ...r, project: project_id }));
  });
  app.post(
    '/provisioning-keys/',
    { schema: { tags: keyTags, body: NewProvisioningKey, response: { 201: Type.Composite([ProvisioningKey, Type.Object({ key: Type.String() })]) } } },
    async (req, reply) => {
      const project = req.body.project ?? null;
      if (project !== null && !(await db.selectFrom('project').select('id').where('id', '=', project).executeTakeFirst())) {
        throw new ValidationError('/project', `no project ${project}`, 'provisioning key');
      }
      const key = newKey('bsp');
      const row = await db
        .insertInto('provisioning_key')
        .values({ name: req.body.name, key_hash: digest(key), project_id: project, created_at: nowIso(), revoked_at: null })
        .returning(['id', 'name', 'project_id', 'created_at'])
        .executeTakeFirstOrThrow();
      return reply.code(201).send({ id: row.id, name: row.name, project: row.project_id, created_at: row.created_at, key });
    },
  );
  app.delete('/provisioning-keys/:id/', { schema: { tags: keyTags, params: Type.Object({ id: Type.Integer({ minimum: 1 }) }) } }, async (req, reply) => {
    const { numUpdatedRows } = await db
      .updateTable('provisioning_key')
      .set({ revoked_at: nowIso() })
      .where('id', '=', req.params.id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    if (!numUpdatedRows) throw new NotFoundError(`no provisioning key ${req.params.id}`);
    return reply.code(204).send();
  });
};

/** Registration (device link): the one route that takes a provisioning key, not a device key. */
export const registrationRoutes = (ctx: ServerContext) => async (app: ServerApp) => {
  const { db } = ctx;
  const provisioning = new WeakMap<FastifyRequest, ProvisioningKeyRow>();
  const provisioningAuth = async (req: FastifyRequest) => {
    const key = bearer(req);
    if (!key) throw new UnauthorizedError('a provisioning key is required: send "Authorization: Bearer <provisioning key>"');
    const row = await db
      .selectFrom('provisioning_key')
      .leftJoin('project', 'project.id', 'provisioning_key.project_id')
      .select(['provisioning_key.id', 'provisioning_key.project_id', 'project.id as project'])
      .where('provisioning_key.key_hash', '=', digest(key))
      .where('provisioning_key.revoked_at', 'is', null)
      .executeTakeFirst();
    if (!row) throw new UnauthorizedError('invalid or revoked provisioning key');
    if (row.project_id !== null && row.project === null) throw new UnauthorizedError(`the provisioning key's project ${row.project_id} no longer exists`);
    provisioning.set(req, { id: row.id, project_id: row.project_id });
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
      const known = await db.selectFrom('device').select('id').where('unit_id', '=', uuid).executeTakeFirst();
      if (known) {
        // a repeat: only by the key that made it, only while the device has not used its key
        const { numUpdatedRows } = await db
          .updateTable('device')
          .set({ device_key_hash: digest(deviceKey) })
          .where('id', '=', known.id)
          .where('provisioning_key_id', '=', key.id)
          .where('key_used_at', 'is', null)
          .executeTakeFirst();
        if (!numUpdatedRows) throw alreadyRegistered(uuid);
        return reply.code(200).send({ id: known.id, uuid, device_key: deviceKey });
      }
      const id = randomUUID();
      try {
        await db.transaction().execute(async (tx) => {
          await tx
            .insertInto('device')
            .values({
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
            })
            .execute();
          if (key.project_id !== null) await tx.insertInto('project_device').values({ project_id: key.project_id, device_id: id }).execute();
        });
      } catch (err) {
        // two registrations of one uuid at once: the second hits the unique index
        if (isUniqueViolation(err)) throw alreadyRegistered(uuid);
        throw err;
      }
      await ctx.targets.refresh([id]);
      return reply.code(201).send({ id, uuid, device_key: deviceKey });
    },
  );
};

const alreadyRegistered = (uuid: string) =>
  new ConflictError(
    `a device with uuid ${uuid} is already registered (a registration is repeated only with the provisioning key that made it, and only until the device first uses its key)`,
  );

function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE' || /UNIQUE constraint failed/.test(e.message ?? '');
}
