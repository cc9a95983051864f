// /docs is useful on its own: every operation of the operator API has a summary, a description, and
// examples of its request body and its JSON answers (in /openapi.json, which /docs shows); a request
// example is one the route accepts as valid.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { backends } from './backends.js';

interface Media {
  example?: unknown;
  examples?: Record<string, { value: unknown }>;
  schema?: unknown;
}
interface Operation {
  summary?: string;
  description?: string;
  requestBody?: { content: Record<string, Media> };
  responses?: Record<string, { content?: Record<string, Media> }>;
}

const exampleOf = (m: Media | undefined) => m?.example ?? Object.values(m?.examples ?? {})[0]?.value;

test('every operator API operation has a summary, a description and examples of its request and answers; /docs serves', async (t) => {
  const server = await backends()[0]!.start(t);
  const doc = (await server.app.inject({ url: '/openapi.json' })).json() as { paths: Record<string, Record<string, Operation>> };
  const problems: string[] = [];
  const requests: { method: string; path: string; body: unknown }[] = [];
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const name = `${method.toUpperCase()} ${path}`;
      if (!op.summary?.trim()) problems.push(`${name}: no summary`);
      else if (op.summary.length > 100) problems.push(`${name}: a summary is one short line`);
      if (!op.description?.trim()) problems.push(`${name}: no description`);
      if (path.startsWith('/device/')) continue; // the device link: the agent's, documented in prose
      const body = op.requestBody?.content['application/json'];
      if (body) {
        const example = exampleOf(body);
        if (example === undefined) problems.push(`${name}: no request example`);
        else requests.push({ method, path, body: example });
      }
      for (const [status, answer] of Object.entries(op.responses ?? {})) {
        const json = answer.content?.['application/json'];
        if (status.startsWith('2') && json && exampleOf(json) === undefined) problems.push(`${name}: no example of its ${status} answer`);
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(requests.length >= 10);

  // each request example passes the route's validation (another refusal — no such id — may follow)
  for (const r of requests) {
    const url = r.path
      .replace(/\{\*\}/, 'v1/device')
      .replace(/\{uuid\}/g, '0'.repeat(32))
      .replace(/\{[^}]+\}/g, '1');
    const res = await server.app.inject({
      method: r.method.toUpperCase() as 'POST',
      url,
      headers: { authorization: `APIToken ${server.firstAdminToken}` },
      payload: r.body as object,
    });
    if (res.statusCode === 400) assert.fail(`${r.method.toUpperCase()} ${r.path}: its example is refused: ${res.body}`);
  }

  const docs = await server.app.inject({ url: '/docs/' });
  assert.equal(docs.statusCode, 200);
  assert.match(docs.body, /swagger/i);
});
