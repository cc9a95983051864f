// Validation of a target state: schema first, then the cross-references the schema cannot express.
// A target is accepted or rejected as a whole; the error names the offending field.
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { ValidationError } from './errors.js';
import { TargetStateSchema, type ReleaseTarget, type TargetState } from './targetState.js';

const compiled = TypeCompiler.Compile(TargetStateSchema);

export function validateTargetState(input: unknown): TargetState {
  const first = compiled.Errors(input).First();
  if (first) throw new ValidationError(first.path, first.message, 'target state');
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
    if (svc.registry !== undefined && !target.registries?.[svc.registry]) {
      throw new ValidationError(`${here}/registry`, `unknown registry "${svc.registry}"`, 'target state');
    }
    svc.depends_on?.forEach((dep, i) => {
      if (!services[dep]) throw new ValidationError(`${here}/depends_on/${i}`, `unknown service "${dep}"`, 'target state');
      if (dep === name) throw new ValidationError(`${here}/depends_on/${i}`, 'a service cannot depend on itself', 'target state');
    });
    const modeTarget = svc.network_mode?.startsWith('service:') ? svc.network_mode.slice(8) : undefined;
    if (modeTarget !== undefined && (!services[modeTarget] || modeTarget === name)) {
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
    });
  }
  const cycle = findDependencyCycle(services);
  if (cycle) throw new ValidationError(`${at}/services/${cycle[0]}/depends_on`, `dependency cycle ${cycle.join(' -> ')}`, 'target state');
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
