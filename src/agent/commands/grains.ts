// `grains.items`: the device's facts, under Salt's grain names where Salt has one.
import os from 'node:os';
import type { ExecuteCommand } from '../../shared/executeCommand.js';
import type { CommandPort } from '../api/devicePort.js';
import { engineErrorMessage } from '../engine/deadline.js';
import { BALENA_API_VERSION, BOSUN_VERSION } from '../../shared/version.js';
import { bind } from './params.js';

export async function grainsItems(device: CommandPort, call: ExecuteCommand): Promise<Record<string, unknown>> {
  bind(call, []);
  const identity = device.identity();
  const engine = await device.engine.version().then(
    (v) => v ?? null,
    (err: unknown) => `unreachable: ${engineErrorMessage(err)}`,
  );
  return {
    id: identity.uuid,
    uuid: identity.uuid,
    device_name: device.deviceName(),
    device_type: identity.type,
    arch: identity.arch,
    cpuarch: os.machine(),
    num_cpus: os.availableParallelism(),
    mem_total: Math.round(os.totalmem() / 2 ** 20),
    kernel: os.type(),
    kernelrelease: os.release(),
    osfullname: identity.osVersion ?? null,
    nodename: os.hostname(),
    docker_version: engine,
    bosun_version: BOSUN_VERSION,
    supervisor_api_version: BALENA_API_VERSION,
    local_mode: device.localMode(),
  };
}
