// A command's arguments by name, as Salt binds them to a function's parameters: positional ones in
// the parameters' order, keyword ones by name. An unknown, doubled, missing or mistyped argument is
// a ValidationError naming it (`/arg/0`, `/kwarg/tail`).
import { ValidationError } from '../../shared/errors.js';
import type { ExecuteCommand } from '../../shared/executeCommand.js';

export interface Param {
  name: string;
  type: 'string' | 'integer' | 'boolean';
  required?: boolean;
}

type Value<P extends Param> = P['type'] extends 'integer' ? number : P['type'] extends 'boolean' ? boolean : string;
export type Args<Ps extends readonly Param[]> = { [P in Ps[number] as P['name']]?: Value<P> };

export function bind<const Ps extends readonly Param[]>(call: ExecuteCommand, params: Ps): Args<Ps> {
  const bad = (field: string, why: string) => new ValidationError(field, why, `arguments of ${call.command}`);
  const out: Record<string, unknown> = {};
  const given = new Map<string, [field: string, value: unknown]>();
  (call.arg ?? []).forEach((value, i) => {
    const p = params[i];
    if (!p) throw bad(`/arg/${i}`, `takes at most ${params.length} positional argument${params.length === 1 ? '' : 's'}`);
    given.set(p.name, [`/arg/${i}`, value]);
  });
  for (const [name, value] of Object.entries(call.kwarg ?? {})) {
    const field = `/kwarg/${name}`;
    if (!params.some((p) => p.name === name))
      throw bad(field, `unexpected keyword argument (${params.length ? `it takes ${params.map((p) => p.name).join(', ')}` : 'it takes none'})`);
    if (given.has(name)) throw bad(field, 'given both as a positional and as a keyword argument');
    given.set(name, [field, value]);
  }
  for (const p of params) {
    const arg = given.get(p.name);
    if (!arg) {
      if (p.required) throw bad(`/arg/${params.indexOf(p)}`, `missing the required argument ${p.name}`);
      continue;
    }
    const [field, value] = arg;
    out[p.name] = typed(p, value, (why) => bad(field, why));
  }
  return out as Args<Ps>;
}

function typed(p: Param, value: unknown, bad: (why: string) => Error): unknown {
  switch (p.type) {
    case 'string':
      if (typeof value === 'string' || typeof value === 'number') return String(value);
      throw bad(`${p.name} must be a string`);
    case 'integer':
      if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
      if (typeof value === 'string' && /^-?\d{1,15}$/.test(value)) return Number(value);
      throw bad(`${p.name} must be an integer`);
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (typeof value === 'string' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
      throw bad(`${p.name} must be true or false`);
  }
}
