// `grains.items`: the device's facts, under Salt's grain names where Salt has one.
import os from 'node:os';
import type { ExecuteCommand } from '../../shared/executeCommand.js';
import type { Agent } from '../agent.js';
import { engineErrorMessage, withDeadline } from '../engine/deadline.js';
import { BALENA_API_VERSION, BOSUN_VERSION } from '../version.js';
import { bind } from './params.js';

export async function grainsItems(agent: Agent, call: ExecuteCommand): Promise<Record<string, unknown>> {
  bind(call, []);
  // @types/dockerode lacks version()'s options; dockerode takes an abortSignal there as everywhere
  const engine = await withDeadline((d) => (agent.docker.version as (o: object) => Promise<{ Version?: string }>).call(agent.docker, d), 10_000).then(
    (v) => v.Version ?? null,
    (err: unknown) => `unreachable: ${engineErrorMessage(err)}`,
  );
  return {
    id: agent.device.uuid,
    uuid: agent.device.uuid,
    device_name: agent.deviceName(),
    device_type: agent.device.type,
    arch: agent.device.arch,
    cpuarch: os.machine(),
    num_cpus: os.availableParallelism(),
    mem_total: Math.round(os.totalmem() / 2 ** 20),
    kernel: os.type(),
    kernelrelease: os.release(),
    osfullname: agent.device.osVersion ?? null,
    nodename: os.hostname(),
    docker_version: engine,
    bosun_version: BOSUN_VERSION,
    supervisor_api_version: BALENA_API_VERSION,
    local_mode: agent.localMode(),
  };
}
