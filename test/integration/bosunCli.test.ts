// `bosun deploy` on real parts: the control plane, a device agent in cloud mode and the test engine.
// A good compose release: the CLI waits until the device runs it (exit 0). A service that crash-loops:
// the CLI stops at the failure with the reason (exit 7), and `bosun logs` shows what it printed.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { cliUser } from '../server/bosunCli.js';
import { controlPlane, imageName, provisionedDevice, tag } from './controlPlane.js';

test('bosun deploy: a compose release runs on the device (exit 0); a crash-looping one fails the deploy with its reason (exit 7)', async (t) => {
  const cp = await controlPlane(t);
  const { appId, deviceId } = await provisionedDevice(t, cp, 'cli', {}, { settleMs: 3000 });
  const device = await deviceId();
  const cli = await cliUser(t);
  const env = { BOSUN_SERVER: cp.url, BOSUN_TOKEN: cp.server.firstAdminToken! };
  const file = path.join(cli.configHome, 'docker-compose.yml');
  const deploy = async (version: string, compose: string) => {
    await fs.writeFile(file, compose);
    return cli.run(['deploy', String(appId), '--compose', file, '--version', version, '--interval', '250', '--timeout', '240'], { env });
  };

  const good = await deploy('1', `services:\n  main:\n    image: ${imageName}:${tag}\n    restart: always\n`);
  assert.equal(good.code, 0, `${good.stdout}\n${good.stderr}`);
  assert.match(good.stdout, /succeeded/);
  assert.match(good.stdout, /release \d+ runs on 1 device/);
  const shown = await cli.run(['device', device, '--json'], { env });
  assert.equal(JSON.parse(shown.stdout).state.apps[String(appId)].services.main.status, 'Running');

  const crash = `services:\n  main:\n    image: ${imageName}:${tag}\n    restart: always\n    command: ["sh", "-c", "echo 'fatal: no config' >&2; exit 1"]\n`;
  const bad = await deploy('2', crash);
  assert.equal(bad.code, 7, `${bad.stdout}\n${bad.stderr}`);
  assert.match(bad.stderr, /: main: (exited with code 1|restarted \d+ time)[^]*fatal: no config/);
  const logs = await cli.run(['logs', device, '--service', 'main'], { env });
  assert.equal(logs.code, 0, logs.stderr);
  assert.match(logs.stdout, /fatal: no config/);
});
