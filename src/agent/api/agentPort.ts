// The agent's side of the port its device API and commands use (devicePort.ts): each operation
// named there, over the agent's parts. Loaded with the device API or the commands, not at start.
import type { Agent } from '../agent.js';
import { readLogs } from '../engine/containerLogs.js';
import { withDeadline } from '../engine/deadline.js';
import { LABEL, ownedBy, SUPERVISED_FILTER } from '../engine/labels.js';
import { readCurrentState } from '../engine/readState.js';
import { followLogs } from '../logs/logFollower.js';
import type { CommandPort, EnginePort } from './devicePort.js';

/** The port of this agent; its parts are read at each call (most are set when the agent starts). */
export function agentPort(agent: Agent): CommandPort {
  return {
    log: agent.log,
    identity: () => agent.device,
    deviceName: () => agent.deviceName(),
    deviceFacts: () => agent.deviceFacts(),
    localMode: () => agent.localMode(),
    authenticate: (key) => agent.apiKeys.authenticate(key),
    regenerateApiKey: (scope) => agent.regenerateApiKey(scope),
    healthProblems: () => agent.healthProblems(),
    get actions() {
      return agent.actions;
    },
    get host() {
      return agent.host;
    },
    requestUpdate: (force, scope) => agent.requestUpdate(force, scope),
    currentState: () => agent.currentState(),
    applying: () => agent.reconciler.status.applying,
    desiredService: (appId, service) => agent.desiredService(appId, service),
    desiredServiceNames: (appId) => agent.desiredServiceNames(appId),
    getTarget: () => agent.getTarget(),
    setLocalTarget: async (target, force) => void (await agent.setTarget(target, 'local', force)),
    followLogs: (onLine) => followLogs(agent.docker, agent.opts.engineScope, agent.log, onLine),
    recordTelemetry: async (points) => (await agent.telemetry()).record(points),
    dependents: () => agent.dependents(),
    engine: engineOf(agent),
    applyNow: () => agent.applyNow(),
    waitReasons: () => agent.reconciler.status.waitReasons,
    events: () => agent.store.events(),
  };
}

function engineOf(agent: Agent): EnginePort {
  const { docker } = agent;
  const scope = agent.opts.engineScope;
  return {
    listContainers: async (all) => {
      const list = await withDeadline((d) => docker.listContainers({ all, filters: SUPERVISED_FILTER, ...d }));
      return list.filter((c) => ownedBy(c.Labels, scope) && c.Labels[LABEL.serviceName]);
    },
    containers: async () => (await readCurrentState(docker, scope)).containers,
    containerState: async (id) => {
      const { State } = await withDeadline((d) => docker.getContainer(id).inspect({ ...d }));
      return State.Paused ? 'paused' : State.Running ? 'running' : 'stopped';
    },
    containerLogs: (id, query, onChunk) => readLogs(docker, id, query, onChunk),
    // @types/dockerode lacks version()'s options; dockerode takes an abortSignal there as everywhere
    version: async () => (await withDeadline((d) => (docker.version as (o: object) => Promise<{ Version?: string }>).call(docker, d), 10_000)).Version,
  };
}
