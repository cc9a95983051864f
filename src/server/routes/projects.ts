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
  { additionalProperties: false, examples: [{ name: 'fleet', description: 'the delivery vans', default_registry: 1 }] },
);
const ProjectPatch = Type.Partial(ProjectBody, { additionalProperties: false, examples: [{ description: 'the delivery vans of the north depot' }] });
const projectExample = { id: 1, name: 'fleet', description: 'the delivery vans', default_registry: 1, devices: ['5d2b9c1e-8f4a-4c3e-9b7d-2a1f0e6c4b3a'] };
const Project = Type.Object(
  {
    id: Type.Integer(),
    name: Type.String(),
    description: Type.String(),
    default_registry: Type.Union([Type.Integer(), Type.Null()]),
    devices: Type.Array(Type.String()),
  },
  { examples: [projectExample] },
);
const IdParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });

export const projectRoutes =
  ({ projects }: ServerContext) =>
  async (app: ServerApp) => {
    const tags = ['docker'];

    app.get(
      '/docker/projects/',
      {
        schema: {
          tags,
          summary: 'List projects',
          description: 'Every project with its devices (their ids).',
          response: { 200: Type.Array(Project, { examples: [[projectExample]] }) },
        },
      },
      async () => projects.list(),
    );
    app.post(
      '/docker/projects/',
      {
        schema: {
          tags,
          summary: 'Create a project',
          description:
            "A project groups releases and the devices that run them; its id is the apps' app id on the devices. `default_registry` is used by " +
            'containers that name none; `devices` lists device ids.',
          body: ProjectBody,
          response: { 201: Project },
        },
      },
      async (req, reply) => reply.code(201).send(await projects.create(req.body)),
    );
    app.get(
      '/docker/projects/:id/',
      {
        schema: { tags, summary: 'Get a project', description: 'One project with its devices. Unknown id: 404.', params: IdParams, response: { 200: Project } },
      },
      async (req) => projects.get(req.params.id),
    );
    app.put(
      '/docker/projects/:id/',
      {
        schema: {
          tags,
          summary: 'Replace a project',
          description:
            'Replaces every field (a field left out takes its default: no devices, no default registry); devices that join or leave get new targets.',
          params: IdParams,
          body: ProjectBody,
          response: { 200: Project },
        },
      },
      async (req) => projects.replace(req.params.id, req.body),
    );
    app.patch(
      '/docker/projects/:id/',
      {
        schema: {
          tags,
          summary: 'Change a project',
          description: 'Changes the fields given, e.g. `devices` (the whole list); devices that join get its active release, devices that leave stop its apps.',
          params: IdParams,
          body: ProjectPatch,
          response: { 200: Project },
        },
      },
      async (req) => projects.patch(req.params.id, req.body),
    );
    app.delete(
      '/docker/projects/:id/',
      {
        schema: {
          tags,
          summary: 'Remove a project',
          description: "Removes the project (204); its devices' targets drop its apps. Unknown id: 404.",
          params: IdParams,
        },
      },
      async (req, reply) => {
        await projects.remove(req.params.id);
        return reply.code(204).send();
      },
    );
  };
