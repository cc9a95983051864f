// Cloud mode (loaded only then): the target comes from the control plane, which also gets the
// device's state, logs and command results; a new device registers first.
import type { Agent } from '../agent.js';
import { writeConfigJson } from '../config/configJson.js';
import { CloudLink } from '../cloud/cloudLink.js';
import { registerDevice } from '../cloud/registration.js';
import { LogShipper } from '../logs/logShipper.js';

/** Follows the control plane at `endpoint`; started. */
export function startCloudLink(agent: Agent, endpoint: string): CloudLink {
  const cloud = new CloudLink({
    endpoint,
    deviceKey: () => agent.config.deviceApiKey,
    register: async () => {
      if (!agent.config.apiKey) throw new Error('config.json has an apiEndpoint but neither a deviceApiKey nor a provisioning apiKey');
      const { deviceId, deviceKey } = await registerDevice(endpoint, agent.config.apiKey, {
        uuid: agent.device.uuid,
        type: agent.device.type,
        name: agent.device.name,
      });
      const { apiKey: _provisioning, ...rest } = agent.config;
      agent.config = { ...rest, deviceApiKey: deviceKey, deviceId, registered_at: Date.now() };
      await writeConfigJson(agent.configPath, agent.config);
      agent.log.info(`Registered with ${endpoint} as device ${deviceId}`);
    },
    setTarget: async (target) => {
      await agent.setTarget(target, 'cloud');
    },
    // reports follow applies and settle rechecks: between engine events the last apply's read is current
    currentState: () => agent.currentState(true),
    unikState: () => agent.unikReport(),
    dependentReport: () => agent.dependentsReport(),
    deviceApiCall: (call) => agent.deviceApiCall(call),
    executeCommand: async (payload) => (await import('../commands/registry.js')).commandResult(agent, payload),
    log: agent.log,
    ...(agent.config.appUpdatePollInterval ? { waitS: Math.min(300, Math.round(agent.config.appUpdatePollInterval / 1000)) } : {}),
  });
  cloud.start();
  return cloud;
}

/** What the services print and the agent's own messages go to the control plane too. */
export function startLogShipper(agent: Agent, endpoint: string): Promise<LogShipper> {
  return LogShipper.start({
    endpoint,
    deviceKey: () => agent.config.deviceApiKey,
    docker: agent.docker,
    scope: agent.opts.engineScope,
    log: agent.log,
    db: agent.store.db,
  });
}
