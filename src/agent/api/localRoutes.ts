// Local-mode routes, as the balena CLI uses them for `balena push <device>` and
// `balena device logs <device>`. The CLI treats any status but 200, 400 and 503 as an empty
// answer, so errors here are 400 (bad input, not in local mode) or 503. Outside local mode the
// target (every app's environment, volume options) needs the device key; the log stream gives an
// app's key its own services' lines only.
import { fromBalenaLocalTarget } from '../../shared/balenaTarget.js';
import { ValidationError } from '../../shared/errors.js';
import { assertDevice, type Api } from './apiRequest.js';
import type { DevicePort } from './devicePort.js';
import { coversApp } from './keyScope.js';

export const localRoutes = (device: DevicePort) => async (app: Api) => {
  app.get('/v2/local/device-info', async () => ({
    status: 'success',
    info: { arch: device.identity().arch, deviceType: device.identity().type },
  }));

  app.get('/v2/local/target-state', async (req) => {
    assertDevice(req, "the target state holds every app's environment");
    const target = device.getTarget();
    return {
      status: 'success',
      state: { local: { name: device.deviceName(), config: target?.config ?? {}, apps: target?.apps ?? {} } },
    };
  });

  app.post('/v2/local/target-state', async (req) => {
    assertDevice(req, 'a local target replaces every app');
    if (!device.localMode()) throw new ValidationError('', 'Target state can only set when device is in local mode', 'request');
    // balena's top-level `force`: this target is applied over the apps' update locks
    const force = (req.body as { force?: unknown } | null)?.force;
    if (force !== undefined && typeof force !== 'boolean') throw new ValidationError('/force', 'must be true or false', 'local target state');
    const dropped: string[] = [];
    const target = fromBalenaLocalTarget(req.body, dropped);
    if (dropped.length) device.log.warn(`Local target: unsupported compose keys ignored: ${dropped.join(', ')}`);
    await device.setLocalTarget(target, force === true);
    return { status: 'success', message: 'OK' };
  });

  app.get('/v2/local/logs', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
    res.write(`${JSON.stringify({ message: 'Streaming logs', isSystem: true })}\n`);
    const scope = req.keyScope;
    const stop = device.followLogs((line) => {
      // an app's key: its services' lines (the agent's own messages name every app)
      if (scope.kind === 'app' && (line.isSystem || line.appId === undefined || !coversApp(scope, line.appId))) return;
      // a slow reader must not make the agent buffer without bound: lines are dropped instead
      if (res.writableLength < 1024 * 1024) res.write(`${JSON.stringify(line)}\n`);
    });
    req.raw.on('close', stop);
  });
};
