// Validation of a target state: schema first, then the cross-references the schema cannot express.
// A target is accepted or rejected as a whole; the error names the offending field.
import type { TSchema } from '@sinclair/typebox';
import { purgeRefusal } from './dataPurge.js';
import { ValidationError } from './errors.js';
import { assertValid } from './validate.js';
import { TargetStateSchema, type ReleaseTarget, type TargetState } from './targetState.js';

export function validateTargetState(input: unknown): TargetState {
  assertValid(TargetStateSchema, input, 'target state');
  checkRecordKeys(TargetStateSchema, input, '');
  const target = input as TargetState;
  for (const [appId, app] of Object.entries(target.apps)) {
    checkRelease(`/apps/${appId}/release`, app.release, target);
  }
  return target;
}

function checkRelease(at: string, release: ReleaseTarget, target: TargetState): void {
  const services = release.services;
  const networks = new Set(['default', ...Object.keys(release.networks ?? {})]);
  const volumes = new Set(Object.keys(release.volumes ?? {}));
  for (const [name, svc] of Object.entries(services)) {
    const here = `${at}/services/${name}`;
    if (svc.registry !== undefined && !Object.hasOwn(target.registries ?? {}, svc.registry)) {
      throw new ValidationError(`${here}/registry`, `unknown registry "${svc.registry}"`, 'target state');
    }
    svc.depends_on?.forEach((dep, i) => {
      if (!Object.hasOwn(services, dep)) throw new ValidationError(`${here}/depends_on/${i}`, `unknown service "${dep}"`, 'target state');
      if (dep === name) throw new ValidationError(`${here}/depends_on/${i}`, 'a service cannot depend on itself', 'target state');
    });
    const modeTarget = svc.network_mode?.startsWith('service:') ? svc.network_mode.slice(8) : undefined;
    if (modeTarget !== undefined && (!Object.hasOwn(services, modeTarget) || modeTarget === name)) {
      throw new ValidationError(`${here}/network_mode`, `unknown service "${modeTarget}"`, 'target state');
    }
    svc.networks?.forEach((net, i) => {
      if (!networks.has(net)) throw new ValidationError(`${here}/networks/${i}`, `undeclared network "${net}"`, 'target state');
    });
    svc.volumes?.forEach((spec, i) => {
      const source = spec.split(':')[0]!;
      if (!source.startsWith('/') && !volumes.has(source)) {
        throw new ValidationError(`${here}/volumes/${i}`, `undeclared volume "${source}"`, 'target state');
      }
      const refusal = svc.purge_data && source.startsWith('/') && !spec.endsWith(':ro') ? purgeRefusal(source) : undefined;
      if (refusal) throw new ValidationError(`${here}/purge_data`, refusal, 'target state');
    });
  }
  const cycle = findDependencyCycle(services);
  if (cycle) throw new ValidationError(`${at}/services/${cycle[0]}/depends_on`, `dependency cycle ${cycle.join(' -> ')}`, 'target state');
}

/**
 * TypeBox records (`patternProperties` without `additionalProperties: false`) accept keys that do
 * not match their key pattern; app ids, service, volume and network names are checked here.
 */
function checkRecordKeys(schema: TSchema, value: unknown, at: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
  const entries = value as Record<string, unknown>;
  if (schema.patternProperties) {
    const patterns = Object.entries(schema.patternProperties as Record<string, TSchema>);
    for (const [key, item] of Object.entries(entries)) {
      const here = `${at}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      const match = patterns.find(([pattern]) => new RegExp(pattern).test(key));
      if (!match) throw new ValidationError(here, `key must match ${patterns.map(([p]) => p).join(' or ')}`, 'target state');
      checkRecordKeys(match[1], item, here);
    }
  }
  for (const [key, sub] of Object.entries((schema.properties ?? {}) as Record<string, TSchema>)) {
    if (Object.hasOwn(entries, key)) checkRecordKeys(sub, entries[key], `${at}/${key}`);
  }
}

/** Service dependencies: depends_on plus the implicit one of `network_mode: service:x`. */
export function dependenciesOf(svc: ReleaseTarget['services'][string]): string[] {
  const deps = [...(svc.depends_on ?? [])];
  if (svc.network_mode?.startsWith('service:')) deps.push(svc.network_mode.slice(8));
  return [...new Set(deps)];
}

function findDependencyCycle(services: ReleaseTarget['services']): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const walk = (name: string, path: string[]): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') return [...path.slice(path.indexOf(name)), name];
    state.set(name, 'visiting');
    for (const dep of dependenciesOf(services[name]!)) {
      const found = walk(dep, [...path, name]);
      if (found) return found;
    }
    state.set(name, 'done');
    return undefined;
  };
  for (const name of Object.keys(services)) {
    const found = walk(name, []);
    if (found) return found;
  }
  return undefined;
}
