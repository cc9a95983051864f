// /auth/tokens/: API tokens for users and scripts. A new token is shown once, in the creation answer.
import { Type } from '@sinclair/typebox';
import type { ServerApp, ServerContext } from '../app.js';

const Token = Type.Object({ id: Type.Integer(), name: Type.String(), created_at: Type.String(), expires_at: Type.Union([Type.String(), Type.Null()]) });
const NewToken = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    expires_at: Type.Optional(Type.Union([Type.String({ format: 'date-time' }), Type.Null()])),
  },
  { additionalProperties: false },
);

export const tokenRoutes =
  ({ tokens }: ServerContext) =>
  async (app: ServerApp) => {
    const tags = ['auth'];
    app.get('/auth/tokens/', { schema: { tags, response: { 200: Type.Array(Token) } } }, async () => tokens.list());
    app.post(
      '/auth/tokens/',
      { schema: { tags, body: NewToken, response: { 201: Type.Composite([Token, Type.Object({ token: Type.String() })]) } } },
      async (req, reply) => {
        const expires = req.body.expires_at ? new Date(req.body.expires_at).toISOString() : null;
        return reply.code(201).send(await tokens.create(req.body.name, expires));
      },
    );
    app.delete('/auth/tokens/:id/', { schema: { tags, params: Type.Object({ id: Type.Integer({ minimum: 1 }) }) } }, async (req, reply) => {
      await tokens.revoke(req.params.id);
      return reply.code(204).send();
    });
  };
