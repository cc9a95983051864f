// Builders for planner tests: targets, desired state, engine state, plan context, and a tiny
// simulated engine that applies steps so multi-pass flows can be followed to convergence.
import { createHash } from 'node:crypto';
import type { AppTarget, ReleaseTarget, ServiceTarget, TargetState } from '../../../src/shared/targetState.js';
import { validateTargetState } from '../../../src/shared/validateTarget.js';
import { findImage, normaliseImageRef, type EngineImage } from '../../../src/agent/engine/imageRef.js';
import { buildDesiredState, type DesiredState } from '../../../src/agent/reconciler/desiredState.js';
import { plan } from '../../../src/agent/reconciler/plan.js';
import { redactConfig, type ServiceSpec, type SpecContext } from '../../../src/agent/reconciler/serviceSpec.js';
import type { CurrentContainer, CurrentNetwork, CurrentState, CurrentVolume, PlanContext, Step } from '../../../src/agent/reconciler/types.js';

export const NOW = Date.UTC(2024, 0, 1, 12);
export const LOCK_ROOT = '/var/lib/bosun/locks';
export const device = { uuid: 'd3v1c3', type: 'raspberrypi4-64', arch: 'aarch64', name: 'kitchen' };
export const specContext: SpecContext = { device, lockRoot: LOCK_ROOT };

// ---------- targets ----------

export function app(services: Record<string, ServiceTarget>, release: Partial<Omit<ReleaseTarget, 'services'>> = {}): AppTarget {
  return { name: 'myapp', release: { id: 1, commit: 'c0ffee', services, ...release } };
}

export function target(apps: Record<number, AppTarget>, extra: Omit<Partial<TargetState>, 'apps'> = {}): TargetState {
  return { ...extra, apps: Object.fromEntries(Object.entries(apps)) };
}

/** App 1 with the given services and nothing else. */
export const single = (services: Record<string, ServiceTarget>, release = {}) => target({ 1: app(services, release) });

/** App 1: `db` (with volume `data`), `api` (depends on db, from a private registry) and `web`. */
export function stack(edit: (services: Record<string, ServiceTarget>) => void = () => {}): TargetState {
  const services: Record<string, ServiceTarget> = {
    db: { image: 'postgres:16', volumes: ['data:/var/lib/postgresql/data'] },
    api: { image: 'registry.example.com/acme/api:1.0', depends_on: ['db'], environment: { FOO: 'old-secret' } },
    web: { image: 'nginx:1.25' },
  };
  edit(services);
  return target({ 1: app(services, { volumes: { data: {} } }) });
}

/** Validated and expanded, as the agent does it. */
export function desired(t: TargetState, ctx: SpecContext = specContext): DesiredState {
  return buildDesiredState(validateTargetState(structuredClone(t)), ctx);
}

export function spec(d: DesiredState, service: string, appId = 1): ServiceSpec {
  const s = d.apps.get(appId)?.services.get(service);
  if (!s) throw new Error(`no service ${appId}/${service} in desired state`);
  return s;
}

// ---------- engine state ----------

/** Deterministic engine image id for a reference. */
export const imageIdOf = (ref: string) => `sha256:${createHash('sha256').update(normaliseImageRef(ref)).digest('hex').slice(0, 16)}`;

export function image(ref: string, id = imageIdOf(ref)): EngineImage {
  return { id, repoTags: [ref], repoDigests: [] };
}

/** Every image (and required tag) the desired state names. */
export function imagesOf(d: DesiredState): EngineImage[] {
  const refs = new Set([...d.apps.values()].flatMap((a) => [...a.services.values()].flatMap((s) => s.images)));
  return [...refs].map((ref) => image(ref));
}

export function networksOf(d: DesiredState): CurrentNetwork[] {
  return [...d.apps.values()].flatMap((a) => a.networks.map((n) => ({ id: `net-${n.engineName}`, name: n.engineName, appId: n.appId, configHash: n.hash })));
}

export function volumesOf(d: DesiredState): CurrentVolume[] {
  return [...d.apps.values()].flatMap((a) => a.volumes.map((v) => ({ name: v.engineName, appId: v.appId })));
}

/** The container the agent would have created for `s`, running since an hour ago. */
export function container(s: ServiceSpec, over: Partial<CurrentContainer> = {}): CurrentContainer {
  return {
    id: `${s.serviceName}-1`,
    name: `${s.serviceName}_${s.releaseId}`,
    appId: s.appId,
    serviceName: s.serviceName,
    releaseId: s.releaseId,
    commit: s.commit,
    configHash: s.hash,
    configLabel: JSON.stringify(redactConfig(s.config)),
    dependsOn: s.dependsOn,
    imageId: imageIdOf(s.config.image),
    state: 'running',
    createdAt: NOW - 3_600_000,
    networks: s.config.networks,
    networkMode:
      s.config.networkMode === 'app'
        ? s.config.networks[0]!
        : s.config.networkMode.startsWith('service:')
          ? `container:${s.config.networkMode.slice(8)}-1`
          : s.config.networkMode,
    ...over,
  };
}

export function containersOf(d: DesiredState): CurrentContainer[] {
  return [...d.apps.values()].flatMap((a) => [...a.services.values()].map((s) => container(s)));
}

export function state(parts: Partial<CurrentState> = {}): CurrentState {
  const containers = parts.containers ?? [];
  return { images: [], networks: [], volumes: [], others: [], imageIdsInUse: new Set(containers.map((c) => c.imageId)), ...parts, containers };
}

/** The engine exactly as `d` wants it; `over` replaces whole parts. */
export function convergedState(d: DesiredState, over: Partial<CurrentState> = {}): CurrentState {
  return state({ images: imagesOf(d), networks: networksOf(d), volumes: volumesOf(d), containers: containersOf(d), ...over });
}

/** The same engine state without some of the app's containers. */
export const without = (cur: CurrentState, ...ids: string[]) => state({ ...cur, containers: cur.containers.filter((c) => !ids.includes(c.id)) });

export function context(over: Partial<PlanContext> = {}): PlanContext {
  return {
    now: NOW,
    downloading: new Set(),
    pullBackoff: new Map(),
    serviceBackoff: new Map(),
    locksHeld: new Set(),
    lockBackoff: new Map(),
    handoverComplete: new Set(),
    startedAt: new Map(),
    stoppedByAgent: new Set(),
    trackedImages: new Set(),
    keepImages: new Set(),
    appliedReleases: new Map(),
    initialContainers: new Map(),
    failedReleases: new Map(),
    purgedData: new Set(),
    ...over,
  };
}

/** Context parts: app 1 holds its update lock; app 1 runs release `releaseId`. */
export const held = () => ({ locksHeld: new Set([1]) });
export const applied = (releaseId = 1) => ({ appliedReleases: new Map([[1, releaseId]]) });

// ---------- reading plans ----------

/** One line per step with what matters at a glance; details are asserted separately. */
export function show(steps: Step[]): string[] {
  // biome-ignore lint/suspicious/useIterableCallbackReturn: the switch covers every action (tsc checks that it returns)
  return steps.map((s) => {
    switch (s.action) {
      case 'fetch':
        return `fetch ${s.serviceName} ${s.image}`;
      case 'createNetwork':
        return `createNetwork ${s.network.engineName}`;
      case 'removeNetwork':
        return `removeNetwork ${s.name}`;
      case 'createVolume':
        return `createVolume ${s.volume.engineName}`;
      case 'takeLock':
        return `takeLock ${s.appId}`;
      case 'releaseLock':
        return `releaseLock ${s.appId}`;
      case 'create':
        return `create ${s.service.serviceName}${s.start ? ' start' : ''}${s.handover ? ' handover' : ''}`;
      case 'start':
        return `start ${s.serviceName} ${s.containerId}`;
      case 'stop':
        return `stop ${s.serviceName} ${s.containerId}`;
      case 'kill':
        return `kill ${s.serviceName} ${s.containerId}`;
      case 'removeImage':
        return `removeImage ${s.ref}`;
      case 'markApplied':
        return `markApplied ${s.appId} ${s.releaseId}`;
      case 'stopInitial':
        return `stopInitial ${s.container.name}`;
      case 'restoreInitial':
        return `restoreInitial ${s.containers.map((c) => c.name).join(',')}`;
      case 'removeInitial':
        return `removeInitial ${s.container.name}`;
      case 'purgeData':
        return `purgeData ${s.serviceName}`;
      case 'noop':
        return `noop ${s.serviceName ?? `app ${s.appId}`}`;
    }
  });
}

export function only<A extends Step['action']>(steps: Step[], action: A): Extract<Step, { action: A }>[] {
  return steps.filter((s): s is Extract<Step, { action: A }> => s.action === action);
}

export const reasons = (steps: Step[]) => [...only(steps, 'noop'), ...only(steps, 'kill')].map((s) => s.reason);

// ---------- a simulated engine ----------

export interface World {
  current: CurrentState;
  ctx: PlanContext;
  /** for new container ids */
  seq: number;
}

/** What an executor would leave behind after running `steps` successfully. */
export function apply(world: World, steps: Step[]): World {
  let { containers, images, networks, volumes, others } = world.current;
  const ctx = {
    ...world.ctx,
    locksHeld: new Set(world.ctx.locksHeld),
    appliedReleases: new Map(world.ctx.appliedReleases),
    initialContainers: new Map(world.ctx.initialContainers),
    purgedData: new Set(world.ctx.purgedData),
  };
  let seq = world.seq;
  for (const s of steps) {
    switch (s.action) {
      case 'fetch':
        images = [...images, image(s.image)];
        break;
      case 'createNetwork':
        networks = [...networks, { id: `net-${s.network.engineName}`, name: s.network.engineName, appId: s.network.appId, configHash: s.network.hash }];
        break;
      case 'removeNetwork':
        networks = networks.filter((n) => n.name !== s.name);
        break;
      case 'createVolume':
        volumes = [...volumes, { name: s.volume.engineName, appId: s.volume.appId }];
        break;
      case 'takeLock':
        ctx.locksHeld.add(s.appId);
        break;
      case 'releaseLock':
        ctx.locksHeld.delete(s.appId);
        break;
      case 'create': {
        const id = `${s.service.serviceName}-${++seq}`;
        const imageId = findImage(images, s.service.config.image)?.id ?? imageIdOf(s.service.config.image);
        containers = [...containers, container(s.service, { id, imageId, state: s.start ? 'running' : 'created', createdAt: ctx.now })];
        break;
      }
      case 'start':
        containers = containers.map((c) => (c.id === s.containerId ? { ...c, state: 'running' } : c));
        break;
      case 'stop':
        containers = containers.map((c) => (c.id === s.containerId ? { ...c, state: 'exited' } : c));
        break;
      case 'kill': {
        containers = containers.filter((c) => c.id !== s.containerId);
        if (s.removeImage) images = images.filter((i) => i.id !== s.removeImage);
        break;
      }
      case 'removeImage':
        images = images.filter((i) => i.id !== s.imageId);
        break;
      case 'markApplied':
        if (s.releaseId === null) ctx.appliedReleases.delete(s.appId);
        else ctx.appliedReleases.set(s.appId, s.releaseId);
        ctx.initialContainers.delete(s.appId);
        break;
      case 'stopInitial': {
        const names = ctx.initialContainers.get(s.appId)?.names ?? [];
        ctx.initialContainers.set(s.appId, { releaseId: s.releaseId, phase: 'stopped', names: [...names, s.container.name] });
        others = others.map((c) => (c.id === s.container.id ? { ...c, state: 'exited' } : c));
        break;
      }
      case 'restoreInitial': {
        const ids = new Set(s.containers.map((c) => c.id));
        others = others.map((c) => (ids.has(c.id) ? { ...c, state: 'running' } : c));
        if (s.forget) ctx.initialContainers.delete(s.appId);
        else ctx.initialContainers.set(s.appId, { releaseId: s.releaseId, phase: 'restored', names: s.containers.map((c) => c.name) });
        break;
      }
      case 'removeInitial':
        others = others.filter((c) => c.id !== s.container.id);
        break;
      case 'purgeData':
        ctx.purgedData.add(`${s.appId}/${s.serviceName}@${s.releaseId}`);
        break;
      case 'noop':
        break;
    }
  }
  const current = { containers, images, networks, volumes, others, imageIdsInUse: new Set(containers.map((c) => c.imageId)) };
  return { current, ctx, seq };
}

/** Plans and applies until a pass plans nothing or only waits; returns every pass's plan. */
export function converge(world: World, d: DesiredState, maxPasses = 20): { world: World; passes: Step[][] } {
  const passes: Step[][] = [];
  for (let i = 0; i < maxPasses; i++) {
    const steps = plan(world.current, d, world.ctx);
    passes.push(steps);
    if (steps.every((s) => s.action === 'noop')) return { world, passes };
    world = apply(world, steps);
  }
  throw new Error(`no convergence after ${maxPasses} passes:\n${passes.map((p) => show(p).join(', ')).join('\n')}`);
}
