// /auth/tokens/: API tokens for users and scripts. A new token is shown once, in the creation answer.
import { Type } from '@sinclair/typebox';
import type { ServerApp, ServerContext } from '../app.js';

const tokenExample = { id: 2, name: 'ci', created_at: '2024-05-01T10:00:00.000Z', expires_at: null };
const Token = Type.Object(
  { id: Type.Integer(), name: Type.String(), created_at: Type.String(), expires_at: Type.Union([Type.String(), Type.Null()]) },
  { examples: [tokenExample] },
);
const NewToken = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    expires_at: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
  },
  { additionalProperties: false, examples: [{ name: 'ci', expires_at: '2025-01-01T00:00:00Z' }] },
);

export const tokenRoutes =
  ({ tokens }: ServerContext) =>
  async (app: ServerApp) => {
    const tags = ['auth'];
    app.get(
      '/auth/tokens/',
      {
        schema: {
          tags,
          summary: 'List API tokens',
          description: 'Every API token that has not been revoked, without the token itself (only its digest is stored).',
          response: { 200: Type.Array(Token, { examples: [[tokenExample]] }) },
        },
      },
      async () => tokens.list(),
    );
    app.post(
      '/auth/tokens/',
      {
        schema: {
          tags,
          summary: 'Create an API token',
          description:
            'A token for a user or a script (`Authorization: APIToken <token>`), optionally expiring at `expires_at`. The answer holds the ' +
            'token: it is shown once, only its digest is kept.',
          body: NewToken,
          response: { 201: Type.Composite([Token, Type.Object({ token: Type.String() })], { examples: [{ ...tokenExample, token: 'bsn_…' }] }) },
        },
      },
      async (req, reply) => {
        const expires = req.body.expires_at ? new Date(req.body.expires_at).toISOString() : null;
        return reply.code(201).send(await tokens.create(req.body.name, expires));
      },
    );
    app.delete(
      '/auth/tokens/:id/',
      {
        schema: {
          tags,
          summary: 'Revoke an API token',
          description: 'The token stops working at once (204). Unknown id: 404.',
          params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        },
      },
      async (req, reply) => {
        await tokens.revoke(req.params.id);
        return reply.code(204).send();
      },
    );
  };
