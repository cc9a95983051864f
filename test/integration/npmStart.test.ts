// `npm start` (scripts/start.sh): it runs the shipped agent bundle; checks its ports before starting
// anything and names the variable that moves a busy one; SIGTERM or SIGINT sent to npm ends everything
// it started, leaving its ports free; each log keeps the previous run's as .1.
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { waitFor } from './harness.js';
import { assertGone, commandOf, descendants, npmStart, portFree, untilUp } from './npmStart.js';

const tmpDir = async (t: { after(fn: () => Promise<void>): void }) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-npm-start-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
};

async function holdPort(t: { after(fn: () => Promise<void>): void }, host: string): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, host, resolve));
  t.after(() => new Promise((resolve) => s.close(() => resolve())));
  return (s.address() as net.AddressInfo).port;
}

test('a busy port stops npm start before it starts anything, naming the variable that moves it', async (t) => {
  const dir = await tmpDir(t);
  for (const [name, host] of [
    ['BOSUN_SERVER_PORT', '127.0.0.1'],
    ['BOSUN_API_PORT', '0.0.0.0'],
    ['BOSUN_UNIK_PORT', '127.0.0.1'],
  ] as const) {
    const busy = await holdPort(t, host);
    const data = path.join(dir, name);
    const s = await npmStart(t, data, { [name]: String(busy) });
    const { code } = await s.exited;
    await s.closed;
    assert.equal(code, 1, s.output());
    assert.match(s.output(), new RegExp(`npm start: nothing was started, because\\n  port ${busy} \\(.*: ${name}=<port> npm start\\) is in use`));
    await assert.rejects(fs.access(data), 'no data dir: nothing started');
    assert.doesNotMatch(s.output(), /Bosun is up|Bundling|\[engine\]/);
  }
});

// …and prints the dashboard and the login command, and keeps the previous logs
test('npm start runs the shipped agent; SIGTERM or SIGINT to npm (or Ctrl-C) ends all it started', async (t) => {
  const data = path.join(await tmpDir(t), 'data');
  let previous: { server: string; agent: string } | undefined;
  // 'group': SIGINT to npm's whole process group, as Ctrl-C in a terminal sends it
  for (const signal of ['SIGTERM', 'SIGINT', 'group'] as const) {
    const s = await npmStart(t, data);
    await untilUp(s);
    assert.match(s.output(), new RegExp(`dashboard {4}${s.url}/\\n`));
    assert.match(s.output(), new RegExp(`log in {7}npx bosun login --server ${s.url} --token "\\$\\(cat ${data}/admin-token\\)"`));
    assert.match(s.output(), new RegExp(`device API on 127.0.0.1:${s.apiPort}\\n`));
    assert.match(s.output(), /dist\/bosun-agent device-key --data-dir .*\/agent/);

    const started = descendants(s.child.pid!);
    const commands = started.map(commandOf).filter((c): c is string => c !== undefined);
    const agent = commands.find((c) => c.includes('--host-sandbox'));
    assert.match(agent ?? '', /--lite-mode .*\/dist\/agent\.cjs --data-dir/, `the shipped agent runs:\n${commands.join('\n')}`);
    assert.ok(!commands.some((c) => /tsx.*src\/agent/.test(c)), `not the sources through tsx:\n${commands.join('\n')}`);
    assert.ok(
      commands.some((c) => c.includes('src/server/main.ts')),
      commands.join('\n'),
    );

    const server = await fs.readFile(path.join(data, 'server.log'), 'utf8');
    const agentLog = await waitFor('the agent log', async () => {
      const text = await fs.readFile(path.join(data, 'agent.log'), 'utf8');
      // each run on its own port: the registered agent follows the server where it now is
      return text.includes(`Following the control plane at ${s.url}`) && text;
    });
    if (previous) {
      assert.ok((await fs.readFile(path.join(data, 'server.log.1'), 'utf8')).startsWith(previous.server), "the previous run's server log is kept");
      assert.ok((await fs.readFile(path.join(data, 'agent.log.1'), 'utf8')).startsWith(previous.agent), "the previous run's agent log is kept");
      assert.doesNotMatch(server, /First start/);
    } else assert.match(server, /First start: admin API token/);
    previous = { server, agent: agentLog };

    if (signal === 'group') process.kill(-s.child.pid!, 'SIGINT');
    else process.kill(s.child.pid!, signal);
    await s.exited;
    // npm answers at once; what it started may take a moment to stop
    await waitFor(`everything stopped after ${signal}`, async () => started.every((p) => commandOf(p) === undefined), 30_000).catch(() => undefined);
    assertGone(started, signal);
    assert.ok(await portFree(Number(new URL(s.url).port), '127.0.0.1'), 'the server port is free');
    assert.ok(await portFree(s.apiPort), 'the device API port is free');
    await s.closed;
    assert.match(s.output(), /Stopped the server and the agent/);
  }
});

test('when the server dies, npm start stops the agent too and says so', async (t) => {
  const s = await npmStart(t, path.join(await tmpDir(t), 'data'));
  await untilUp(s);
  const started = descendants(s.child.pid!);
  const server = started.find((p) => commandOf(p)?.includes('src/server/main.ts'));
  assert.ok(server, 'the server runs');
  process.kill(server, 'SIGKILL');
  const { code } = await s.exited;
  assert.notEqual(code, 0);
  await waitFor('everything stopped', async () => started.every((p) => commandOf(p) === undefined), 30_000).catch(() => undefined);
  assertGone(started, 'the server killed');
  await s.closed;
  assert.match(s.output(), /The server stopped: see .*server\.log/);
});
