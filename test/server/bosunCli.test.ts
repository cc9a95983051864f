// The `bosun` CLI as a user runs it (bin/bosun.mjs, a child process) against a real server process
// on SQLite, with a device simulated over the real device link (register, state reports, logs,
// commands, telemetry): login and its config file, wrong token, unreachable server, every read with
// --json, releases from a compose file, deploy to success and to failure, exec, logs, telemetry,
// completion; and in a pseudo-terminal (tmux) the progress bars and `logs -f`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, test, type TestContext } from 'node:test';
import { cliUser, eventually, inTerminal } from './bosunCli.js';
import { startServerProcess, type ServerProcess } from './serverProcess.js';

async function api(s: ServerProcess, method: string, url: string, body?: unknown): Promise<any> {
  const res = await fetch(`${s.url}${url}`, {
    method,
    headers: { authorization: `APIToken ${s.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

/** A device on the real device link, driven by the test. */
async function simulatedDevice(s: ServerProcess, project: number, name: string) {
  const { key: provisioning } = await api(s, 'POST', '/provisioning-keys/', { name, project });
  const reg = await fetch(`${s.url}/device/register`, {
    method: 'POST',
    headers: { authorization: `Bearer ${provisioning}`, 'content-type': 'application/json' },
    body: JSON.stringify({ uuid: randomBytes(16).toString('hex'), device_type: 'generic-amd64', name }),
  });
  assert.equal(reg.status, 201);
  const { id, device_key } = (await reg.json()) as { id: string; device_key: string };
  const call = async (method: string, url: string, body?: unknown, type = 'application/json') => {
    const res = await fetch(`${s.url}${url}`, {
      method,
      headers: { authorization: `Bearer ${device_key}`, ...(body !== undefined ? { 'content-type': type } : {}) },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    assert.ok(res.ok, `${method} ${url}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  let seq = 0;
  return {
    id,
    report: (app: Record<string, unknown>) => call('PATCH', '/device/v1/state', { agent_version: '0.1.0', apps: { [String(project)]: app } }),
    log: (service: string, message: string) =>
      call(
        'POST',
        '/device/v1/logs?queue=testqueue1',
        `${JSON.stringify({ seq: ++seq, ts: new Date().toISOString(), stream: 'stdout', message, app_id: project, service })}\n`,
        'application/x-ndjson',
      ),
    /** answers the next execute command with `result` */
    answer: async (result: { return: unknown; success: boolean; retcode: number }) => {
      const commands = await eventually('a command for the device', async () => {
        const list = (await call('GET', '/device/v1/commands?wait=1')) as { id: number; kind: string }[];
        return list.length ? list : undefined;
      });
      await call('POST', `/device/v1/commands/${commands[0]!.id}/result`, result);
    },
    telemetry: (points: unknown[]) => call('POST', '/device/v1/telemetry', { batch: `b${++seq}`, points }),
  };
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

async function setup(t: TestContext) {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-cli-server-'));
  t.after(() => fs.rm(dataDir, { recursive: true, force: true }));
  const server = await startServerProcess(t, ['--data-dir', dataDir, '--port', '0']);
  const registry = await api(server, 'POST', '/docker/registries/', { url: 'registry.example.com', username: 'bob', password: 'registry-pw-never-shown' });
  const project = (await api(server, 'POST', '/docker/projects/', { name: 'hello', default_registry: registry.id })).id as number;
  const cli = await cliUser(t);
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-cli-work-'));
  t.after(() => fs.rm(work, { recursive: true, force: true }));
  const compose = async (text: string, env?: string) => {
    if (env !== undefined) await fs.writeFile(path.join(work, 'web.env'), env);
    const file = path.join(work, 'docker-compose.yml');
    await fs.writeFile(file, text);
    return file;
  };
  const login = async () => assert.equal((await cli.run(['login', '--server', server.url, '--token', server.token])).code, 0);
  return { server, project, cli, compose, login };
}

const WEB = 'services:\n  web:\n    image: acme/web:1\n    env_file: web.env\n    environment: {MODE: prod}\n';

describe('the bosun CLI against a real server', () => {
  test('login: a wrong token is refused (exit 3) and nothing saved; a good one from stdin is saved 0600 and never printed; the environment overrides it', async (t) => {
    const { server, cli } = await setup(t);
    const file = path.join(cli.configHome, 'bosun', 'config.json');

    const none = await cli.run(['devices']);
    assert.equal(none.code, 3);
    assert.match(none.stderr, /bosun login --server/);

    const wrong = await cli.run(['login', '--server', server.url, '--token', 'bsn_wrong']);
    assert.equal(wrong.code, 3, wrong.stderr);
    assert.match(wrong.stderr, new RegExp(`${server.url}.*refused the API token.*bosun login`));
    await assert.rejects(fs.stat(file), 'nothing saved');

    const good = await cli.run(['login', '--server', server.url], { input: `${server.token}\n` });
    assert.equal(good.code, 0, good.stderr);
    assert.ok(!good.stdout.includes(server.token) && !good.stderr.includes(server.token), 'the token is never printed');
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
    assert.equal((await fs.stat(path.dirname(file))).mode & 0o777, 0o700);
    assert.deepEqual(JSON.parse(await fs.readFile(file, 'utf8')), { server: server.url, token: server.token });
    assert.equal((await cli.run(['projects'])).code, 0);

    const revoked = await cli.run(['projects'], { env: { BOSUN_TOKEN: 'bsn_not_a_token' } });
    assert.equal(revoked.code, 3, 'BOSUN_TOKEN overrides the saved token');
    assert.match(revoked.stderr, /run "bosun login/);

    const port = await closedPort();
    const away = await cli.run(['devices'], { env: { BOSUN_SERVER: `http://127.0.0.1:${port}` } });
    assert.equal(away.code, 4, away.stderr);
    assert.match(away.stderr, new RegExp(`cannot reach the Bosun server at http://127.0.0.1:${port}`));
    assert.ok(!away.stderr.includes(server.token));
  });

  test('reads: projects, registries (no password), tokens, devices (--project, --online), device; --json parses; unknown names exit 5', async (t) => {
    const { server, project, cli, login } = await setup(t);
    await login();
    const dev = await simulatedDevice(server, project, 'truck-1');
    const release = await api(server, 'POST', `/docker/projects/${project}/releases/`, { version: '1', containers: [{ name: 'web', image: 'acme/web' }] });
    await dev.report({
      releaseId: null,
      targetReleaseId: release.id,
      updateStatus: 'downloading',
      services: { web: { status: 'Downloading', downloadProgress: 30, error: null } },
    });
    const json = async (args: string[]) => {
      const r = await cli.run([...args, '--json']);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout);
    };
    assert.deepEqual(
      (await json(['projects'])).map((p: { name: string }) => p.name),
      ['hello'],
    );
    const registries = await cli.run(['registries']);
    assert.match(registries.stdout, /registry\.example\.com\s+bob/);
    assert.ok(!JSON.stringify(await json(['registries'])).includes('registry-pw'), 'no password');
    assert.ok(!registries.stdout.includes('registry-pw'));
    assert.deepEqual(
      (await json(['tokens'])).map((x: { name: string }) => x.name),
      ['admin'],
    );
    assert.deepEqual(
      (await json(['devices', '--project', 'hello', '--online'])).map((d: { name: string }) => d.name),
      ['truck-1'],
    );
    assert.equal((await cli.run(['devices', '--project', String(project + 1000)])).code, 5);
    assert.equal((await cli.run(['devices', '-q', '--project', 'hello'])).stdout, `${dev.id}\n`);
    const table = await cli.run(['devices']);
    assert.match(table.stdout, /^ID\s+NAME\s+ONLINE\s+LAST SEEN\s+STATUS\s+RELEASE$/m);
    assert.match(table.stdout, new RegExp(`${dev.id}\\s+truck-1\\s+yes\\s+\\d+ s ago\\s+updating\\s+- → ${release.id}$`, 'm'));
    const one = await cli.run(['device', 'truck-1']);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /online:\s+yes/);
    assert.match(one.stdout, new RegExp(`app ${project}: release -, target ${release.id}, downloading`));
    assert.match(one.stdout, /web\s+Downloading 30%/);
    assert.equal((await json(['device', dev.id])).id, dev.id);
    const unknown = await cli.run(['device', 'no-such-truck']);
    assert.equal(unknown.code, 5);
    assert.match(unknown.stderr, /bosun devices/);
    assert.equal((await cli.run(['devices', '--project', 'nope'])).code, 5);
  });

  test('release create: a compose file with its env_file; a key the server cannot honour exits 6 naming it; a missing file exits 2', async (t) => {
    const { server, project, cli, compose, login } = await setup(t);
    await login();
    const file = await compose(WEB, 'GREETING=hello\n');
    const created = await cli.run(['release', 'create', 'hello', '--compose', file, '--version', '1.0.0', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const release = JSON.parse(created.stdout);
    assert.deepEqual(release.containers[0].startup_parameters.environment, { GREETING: 'hello', MODE: 'prod' });
    assert.equal((await api(server, 'GET', `/docker/projects/${project}/releases/active/`)).id, release.id);

    const again = await cli.run(['release', 'create', String(project), '--compose', file, '--version', '1.0.0']);
    assert.equal(again.code, 6);
    assert.match(again.stderr, /409.*1\.0\.0/);

    const bad = await compose('services:\n  web:\n    image: acme/web\n    ports: ["8080:80", "http:80"]\n    build: .\n');
    const refused = await cli.run(['release', 'create', 'hello', '--compose', bad]);
    assert.equal(refused.code, 6);
    assert.match(refused.stderr, /services\.web\.build: not supported/);
    await compose('services:\n  web:\n    image: acme/web\n    ports: ["8080:80", "http:80"]\n');
    assert.match((await cli.run(['release', 'create', 'hello', '--compose', bad])).stderr, /services\.web\.ports\[1\]/);

    const noEnv = await compose('services:\n  web:\n    image: acme/web\n    env_file: [missing.env, {path: optional.env, required: false}]\n');
    const noEnvRun = await cli.run(['release', 'create', 'hello', '--compose', noEnv]);
    assert.equal(noEnvRun.code, 2, 'a required env_file that is not there');
    assert.match(noEnvRun.stderr, /env_file .*missing\.env: no such file/);

    const missing = await cli.run(['release', 'create', 'hello', '--compose', '/nonexistent/compose.yml']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /no such file/);
    assert.equal((await cli.run(['release', 'create', 'hello'])).code, 2, 'a missing required option is a usage error');
  });

  test('deploy (not a terminal): one line per change until every device runs it (exit 0), or one fails (exit 7, with the reason)', async (t) => {
    const { server, project, cli, compose, login } = await setup(t);
    await login();
    const dev = await simulatedDevice(server, project, 'truck-1');
    const file = await compose(WEB, 'GREETING=hello\n');
    const deploy = cli.run(['deploy', 'hello', '--compose', file, '--version', '1', '--interval', '100']);
    const release = await eventually('the release', async () => (await api(server, 'GET', `/docker/projects/${project}/releases/`))[0]);
    const service = (status: string, downloadProgress: number | null, error: string | null = null) => ({ web: { status, downloadProgress, error } });
    await dev.report({ releaseId: null, targetReleaseId: release.id, updateStatus: 'downloading', services: service('Downloading', 40) });
    await eventually(
      'downloading',
      async () => (await api(server, 'GET', `/docker/projects/${project}/releases/${release.id}/deployments/`))[0].state === 'downloading',
    );
    await new Promise((r) => setTimeout(r, 400)); // the CLI polls every 100 ms: it sees 40%
    await dev.report({ releaseId: release.id, targetReleaseId: release.id, updateStatus: 'done', settle: 'settled', services: service('Running', null) });
    const ok = await deploy;
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /truck-1: downloading 40%/);
    assert.match(ok.stdout, /truck-1: succeeded/);
    assert.match(ok.stdout, /release \d+ runs on 1 device/);

    const failing = cli.run(['deploy', 'hello', '--compose', file, '--version', '2', '--interval', '100']);
    const second = await eventually('release 2', async () => (await api(server, 'GET', `/docker/projects/${project}/releases/`))[1]);
    await dev.report({
      releaseId: second.id,
      targetReleaseId: second.id,
      updateStatus: 'done',
      settle: 'failed',
      services: service('Restarting', null, 'exited with code 1, restarted 3 times'),
    });
    const failed = await failing;
    assert.equal(failed.code, 7, failed.stderr);
    assert.match(failed.stderr, /truck-1: web: exited with code 1, restarted 3 times/);
    assert.match(failed.stderr, /bosun logs/);

    const timeout = await cli.run(['deploy', 'hello', '--compose', file, '--version', '3', '--interval', '100', '--timeout', '1']);
    assert.equal(timeout.code, 9, timeout.stderr);
  });

  test('exec waits for the result and prints its return (exit 0); a failed command exits 8; logs and telemetry print what the device sent', async (t) => {
    const { server, project, cli, login } = await setup(t);
    await login();
    const dev = await simulatedDevice(server, project, 'truck-1');
    const ran = cli.run(['exec', 'truck-1', 'cmd.run', 'echo hi', 'timeout=5']);
    await dev.answer({ return: 'hi from the device', success: true, retcode: 0 });
    const ok = await ran;
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, 'hi from the device\n');
    const failing = cli.run(['exec', dev.id, 'cmd.run', 'false', '--json']);
    await dev.answer({ return: { stderr: 'no' }, success: false, retcode: 1 });
    const failed = await failing;
    assert.equal(failed.code, 8);
    assert.deepEqual(JSON.parse(failed.stdout).return, { stderr: 'no' });

    const slow = await cli.run(['exec', 'truck-1', 'test.ping', '--timeout', '1']);
    assert.equal(slow.code, 9, 'no answer within --timeout');
    assert.match(slow.stderr, /no result after 1 s/);
    await dev.answer({ return: true, success: true, retcode: 0 }); // (that job, answered late)

    await dev.log('web', 'hello from web');
    await dev.log('db', 'hello from db');
    const logs = await cli.run(['logs', 'truck-1', '--service', 'web']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /web\s+hello from web/);
    assert.ok(!logs.stdout.includes('hello from db'));
    assert.equal(JSON.parse((await cli.run(['logs', 'truck-1', '--json'])).stdout.split('\n')[0]).message, 'hello from web');

    const ts = (m: number) => new Date(Date.now() - m * 60_000).toISOString();
    await dev.telemetry([
      { field: 'obd.bat.voltage', type: 'float', value: 13.5, ts: ts(5) },
      { field: 'obd.bat.voltage', type: 'float', value: 12.5, ts: ts(4) },
    ]);
    const csv = await cli.run(['telemetry', 'truck-1', '--field', 'obd.bat.voltage', '--from', '-1h', '--csv']);
    assert.equal(csv.code, 0, csv.stderr);
    assert.deepEqual(csv.stdout.trim().split('\n').slice(0, 1), ['ts,value']);
    assert.deepEqual(
      csv.stdout
        .trim()
        .split('\n')
        .slice(1)
        .map((l) => l.split(',')[1]),
      ['13.5', '12.5'],
    );
    const agg = await cli.run(['telemetry', 'truck-1', '--field', 'obd.bat.voltage', '--from', '-1h', '--interval', '1h', '--agg', 'avg', '--json']);
    assert.equal(agg.code, 0, agg.stderr);
    const buckets = JSON.parse(agg.stdout) as { value: number }[];
    // two points a minute apart: one hourly bucket, or two when an hour begins between them
    assert.deepEqual(buckets.length === 1 ? buckets.map((b) => b.value) : [13], [13]);
    const badRange = await cli.run(['telemetry', 'truck-1', '--field', 'obd.bat.voltage', '--from', 'yesterday']);
    assert.equal(badRange.code, 2);
  });

  test('in a terminal: deploy draws a bar per device that fills, then says succeeded; logs -f shows a new line live and ends on Ctrl-C', async (t) => {
    const { server, project, cli, compose, login } = await setup(t);
    await login();
    const dev = await simulatedDevice(server, project, 'truck-1');
    const file = await compose(WEB, 'GREETING=hello\n');
    const term = await inTerminal(t, cli, ['deploy', 'hello', '--compose', file, '--version', '1', '--interval', '100']);
    const release = await eventually('the release', async () => (await api(server, 'GET', `/docker/projects/${project}/releases/`))[0]);
    await dev.report({
      releaseId: null,
      targetReleaseId: release.id,
      updateStatus: 'downloading',
      services: { web: { status: 'Downloading', downloadProgress: 50 } },
    });
    await eventually('a half-full bar', async () => /truck-1\s+\[#{12}-{12}\]\s+50%\s+downloading/.test(await term.screen()));
    await dev.report({ releaseId: release.id, targetReleaseId: release.id, updateStatus: 'done', settle: 'settled', services: { web: { status: 'Running' } } });
    const done = await eventually('the end', async () => {
      const s = await term.screen();
      return /EXIT=0/.test(s) && s;
    });
    assert.match(done, /truck-1\s+\[#{24}\]\s+100%\s+succeeded/);
    assert.equal(done.match(/truck-1\s+\[/g)?.length, 1, 'the bar is redrawn in place, not repeated');

    await dev.log('web', 'before the tail');
    const tail = await inTerminal(t, { ...cli, configHome: await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-tmux-')) }, ['logs', 'truck-1', '-f']);
    await eventually('the backlog', async () => (await tail.screen()).includes('before the tail'));
    await dev.log('web', 'printed while following');
    await eventually('the live line', async () => (await tail.screen()).includes('printed while following'));
    await tail.keys('C-c');
    await eventually('the end of the tail', async () => /EXIT=0/.test(await tail.screen()));
  });

  test('completion: bash completes commands and their options; zsh gets a compdef script', async (t) => {
    const { cli } = await setup(t);
    const bash = await cli.run(['completion', 'bash']);
    assert.equal(bash.code, 0);
    const complete = async (words: string[]) => {
      const script = `${bash.stdout}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _bosun; echo "\${COMPREPLY[*]}"`;
      const { stdout } = await promisify(execFile)('bash', ['-c', script]);
      const r = stdout.trim();
      return r.split(' ');
    };
    assert.deepEqual(await complete(['bosun', 'de']), ['devices', 'device', 'deploy']);
    assert.deepEqual(await complete(['bosun', 'devices', '--p']), ['--project']);
    assert.deepEqual(await complete(['bosun', 'release', 'c']), ['create']);
    const zsh = await cli.run(['completion', 'zsh']);
    assert.match(zsh.stdout, /^#compdef bosun/);
    assert.match(zsh.stdout, /'deploy:create a release/);
    assert.equal((await cli.run(['completion', 'fish'])).code, 2);
    const help = await cli.run(['--help']);
    assert.match(help.stdout, /Examples:[\s\S]*bosun deploy/);
    assert.match(help.stdout, /Exit codes:/);
  });
});
