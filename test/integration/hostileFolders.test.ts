// Folders app containers can write, on the real engine: a root container plants links, a FIFO and
// a huge sparse file in its update-lock folder, and links and FIFOs in the data purge_data empties.
// Nothing outside those folders changes, the agent stays responsive and other apps keep updating.
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { containersOf, converge, execIn, freshAppId, service, startAgent, target, waitFor } from './harness.js';

async function outsideFolder(t: { after(fn: () => Promise<void>): void }): Promise<{ dir: string; intact(): Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-outside-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.mkdir(path.join(dir, 'sub'));
  await fs.writeFile(path.join(dir, 'victim'), 'host data\n');
  await fs.writeFile(path.join(dir, 'sub', 'inner'), 'host data\n');
  return {
    dir,
    intact: async () => {
      assert.equal(await fs.readFile(path.join(dir, 'victim'), 'utf8'), 'host data\n', 'the host file outside the folder is unchanged');
      assert.equal(await fs.readFile(path.join(dir, 'sub', 'inner'), 'utf8'), 'host data\n');
      assert.deepEqual((await fs.readdir(dir)).sort(), ['sub', 'victim']);
    },
  };
}

const sh = async (containerId: string, script: string) => {
  const r = await execIn(containerId, ['sh', '-c', script]);
  assert.equal(r.exitCode, 0, r.output);
};

test("planted links, a FIFO and a huge file in lock folders: the host is untouched, the agent responsive, planted locks are the app's", async (t) => {
  const victim = await outsideFolder(t);
  const apps = { temps: freshAppId(), link: freshAppId(), fifo: freshAppId(), sparse: freshAppId(), clean: freshAppId() };
  const ids = Object.values(apps);
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-agent-'));
  const lockDir = (appId: number) => path.join(dataDir, 'locks', String(appId), 'main');
  // (were the agent to block on the FIFO, opening its other end lets the test end; before the agent stops)
  t.after(() =>
    fs.open(path.join(lockDir(apps.fifo), 'updates.lock'), constants.O_WRONLY | constants.O_NONBLOCK).then(
      (f) => f.close(),
      () => undefined,
    ),
  );
  const { agent, logs } = await startAgent(t, ids, { dataDir });
  const release = (id: number) =>
    target(Object.fromEntries(ids.map((a) => [a, { releaseId: id, services: { main: service({ environment: { V: String(id) } }) } }])));
  await agent.setTarget(release(1), 'test');
  await converge(agent);
  const main = async (appId: number) => (await containersOf(appId)).find((c) => c.service === 'main')!;
  const before = Object.fromEntries(await Promise.all(Object.entries(apps).map(async ([k, a]) => [k, (await main(a)).id] as const)));

  // The containers run as root and plant, in the folder they see at /tmp/balena:
  // links at the names the old agent wrote its temp files to (its pid was predictable) ...
  const hostFile = path.join(victim.dir, 'victim');
  await sh(
    before.temps!,
    `ln -s ${hostFile} /tmp/balena/.bosun-lock-${process.pid}-updates.lock && ln -s ${hostFile} /tmp/balena/.bosun-lock-${process.pid}-resin-updates.lock`,
  );
  // ... and, as the lock file itself, a link to a host file, a FIFO, a 64 GiB sparse file.
  await sh(before.link!, `ln -s ${hostFile} /tmp/balena/updates.lock`);
  await sh(before.fifo!, 'mkfifo /tmp/balena/updates.lock');
  await sh(before.sparse!, 'truncate -s 64G /tmp/resin/updates.lock');

  await agent.setTarget(release(2), 'test');
  // Apps without a lock are updated, whatever the others planted.
  for (const a of [apps.temps, apps.clean]) {
    await waitFor(
      `app ${a} on release 2`,
      async () => {
        const c = await main(a);
        return c?.releaseId === 2 && c.state === 'running';
      },
      90_000,
    ).catch((err: Error) => assert.fail(`${err.message}\n${logs.slice(-20).join('\n')}`));
  }
  await victim.intact();
  const port = agent.apiPort();
  assert.equal((await fetch(`http://127.0.0.1:${port}/ping`)).status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${port}/v1/healthy`)).status, 200);

  // What sits at updates.lock is the app holding its lock: those apps keep running untouched.
  await waitFor(
    'each planted lock reported as held',
    async () => [apps.link, apps.fifo, apps.sparse].every((a) => logs.some((l) => l.includes(`Updates are locked by app ${a} (${lockDir(a)}/updates.lock)`))),
    30_000,
  );
  for (const k of ['link', 'fifo', 'sparse'] as const) {
    const c = await main(apps[k]);
    assert.deepEqual([c.id, c.releaseId, c.state], [before[k], 1, 'running'], `${k}: not updated while its lock is held`);
  }
  const kinds = await Promise.all(
    [apps.link, apps.fifo, apps.sparse].map(async (a) => {
      const st = await fs.lstat(path.join(lockDir(a), 'updates.lock'));
      return [st.isSymbolicLink(), st.isFIFO(), st.isFile() && st.size === 64 * 2 ** 30];
    }),
  );
  assert.deepEqual(
    kinds,
    [
      [true, false, false],
      [false, true, false],
      [false, false, true],
    ],
    'each planted object is left as it was',
  );
  assert.deepEqual((await fs.readdir(lockDir(apps.temps))).sort(), [
    `.bosun-lock-${process.pid}-resin-updates.lock`,
    `.bosun-lock-${process.pid}-updates.lock`,
  ]);

  // Once the apps remove what they planted, their updates go through.
  for (const k of ['link', 'fifo', 'sparse'] as const) await sh(before[k]!, 'rm /tmp/balena/updates.lock');
  await converge(agent, 90_000);
  for (const a of ids) assert.equal((await main(a)).releaseId, 2);
  await victim.intact();
});

test('purge_data resolves the bind on the device and empties it without following what containers planted', async (t) => {
  const victim = await outsideFolder(t);
  const dataRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'bosun-data-'));
  t.after(() => fs.rm(dataRoot, { recursive: true, force: true }));
  process.env.BOSUN_DATA_ROOTS = dataRoot;
  t.after(() => delete process.env.BOSUN_DATA_ROOTS);
  await fs.mkdir(path.join(dataRoot, 'app'));
  await fs.symlink(victim.dir, path.join(dataRoot, 'linked')); // inside the data area by name, outside it in fact

  const appId = freshAppId();
  const { agent, logs } = await startAgent(t, [appId]);
  const svc = (purge: boolean, env: string) => service({ volumes: [`${dataRoot}/app:/data`], purge_data: purge, environment: { V: env } });
  await agent.setTarget(target({ [appId]: { services: { main: svc(false, '1') } } }), 'test');
  await converge(agent);
  const [first] = await containersOf(appId);
  await sh(
    first!.id,
    `ln -s ${victim.dir} /data/escape && ln -s ${victim.dir}/victim /data/file && mkfifo /data/fifo && ` +
      `mkdir -p /data/d/e && ln -s ${victim.dir} /data/d/e/deep && echo old > /data/d/kept`,
  );

  // Release 2 starts on purged data: what the container planted is gone, what it pointed at is not.
  await agent.setTarget(target({ [appId]: { releaseId: 2, services: { main: svc(true, '2') } } }), 'test');
  await converge(agent, 90_000);
  assert.deepEqual(await fs.readdir(path.join(dataRoot, 'app')), []);
  await victim.intact();

  // A bind that resolves outside the data areas is refused on the device, and nothing is emptied.
  await agent.setTarget(
    target({ [appId]: { releaseId: 3, services: { main: service({ volumes: [`${dataRoot}/linked:/data`], purge_data: true }) } } }),
    'test',
  );
  const refused = await waitFor('the purge refused', async () => logs.find((l) => l.startsWith('Failed to purgeData service main')), 60_000);
  assert.match(refused, new RegExp(`${dataRoot}/linked is ${await fs.realpath(victim.dir)}: purge_data would empty .*only folders inside a data area`));
  await victim.intact();
});
