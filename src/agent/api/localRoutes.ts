// Local-mode routes, as the balena CLI uses them for `balena push <device>` and
// `balena device logs <device>`. The CLI treats any status but 200, 400 and 503 as an empty
// answer, so errors here are 400 (bad input, not in local mode) or 503.
import { fromBalenaLocalTarget } from '../../shared/balenaTarget.js';
import { ValidationError } from '../../shared/errors.js';
import type { Agent } from '../agent.js';
import { followLogs } from '../logs/logFollower.js';
import type { Api } from './deviceApi.js';

export const localRoutes = (agent: Agent) => async (app: Api) => {
  app.get('/v2/local/device-info', async () => ({
    status: 'success',
    info: { arch: agent.device.arch, deviceType: agent.device.type },
  }));

  app.get('/v2/local/target-state', async () => {
    const target = agent.getTarget();
    return {
      status: 'success',
      state: { local: { name: agent.deviceName(), config: target?.config ?? {}, apps: target?.apps ?? {} } },
    };
  });

  app.post('/v2/local/target-state', async (req) => {
    if (!agent.localMode()) throw new ValidationError('', 'Target state can only set when device is in local mode', 'request');
    const dropped: string[] = [];
    const target = fromBalenaLocalTarget(req.body, dropped);
    if (dropped.length) agent.log.warn(`Local target: unsupported compose keys ignored: ${dropped.join(', ')}`);
    await agent.setTarget(target, 'local');
    return { status: 'success', message: 'OK' };
  });

  app.get('/v2/local/logs', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
    res.write(`${JSON.stringify({ message: 'Streaming logs', isSystem: true })}\n`);
    const stop = followLogs(agent.docker, agent.opts.engineScope, agent.log, (line) => {
      // a slow reader must not make the agent buffer without bound: lines are dropped instead
      if (res.writableLength < 1024 * 1024) res.write(`${JSON.stringify(line)}\n`);
    });
    req.raw.on('close', stop);
  });
};
