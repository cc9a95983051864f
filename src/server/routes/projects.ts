// /docker/projects/: a project groups releases and the devices that run them (services/projects.ts).
import { Type } from '@sinclair/typebox';
import type { ServerApp, ServerContext } from '../app.js';

const ProjectBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200 }),
    description: Type.Optional(Type.String({ maxLength: 10_000 })),
    default_registry: Type.Optional(Type.Union([Type.Integer({ minimum: 1 }), Type.Null()])),
    devices: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { uniqueItems: true })),
  },
  { additionalProperties: false },
);
const ProjectPatch = Type.Partial(ProjectBody, { additionalProperties: false });
const Project = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Type.String(),
  default_registry: Type.Union([Type.Integer(), Type.Null()]),
  devices: Type.Array(Type.String()),
});
const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });

export const projectRoutes =
  ({ projects }: ServerContext) =>
  async (app: ServerApp) => {
    const tags = ['docker'];

    app.get('/docker/projects/', { schema: { tags, response: { 200: Type.Array(Project) } } }, async () => projects.list());
    app.post('/docker/projects/', { schema: { tags, body: ProjectBody, response: { 201: Project } } }, async (req, reply) =>
      reply.code(201).send(await projects.create(req.body)),
    );
    app.get('/docker/projects/:id/', { schema: { tags, params: IdParams, response: { 200: Project } } }, async (req) => projects.get(req.params.id));
    app.put('/docker/projects/:id/', { schema: { tags, params: IdParams, body: ProjectBody, response: { 200: Project } } }, async (req) =>
      projects.replace(req.params.id, req.body),
    );
    app.patch('/docker/projects/:id/', { schema: { tags, params: IdParams, body: ProjectPatch, response: { 200: Project } } }, async (req) =>
      projects.patch(req.params.id, req.body),
    );
    app.delete('/docker/projects/:id/', { schema: { tags, params: IdParams } }, async (req, reply) => {
      await projects.remove(req.params.id);
      return reply.code(204).send();
    });
  };
