// `npm start` set-up: on a running server, the things a first device needs — the engine script's
// registry, a project using it, a provisioning key — and the agent's config.json. Idempotent:
// what exists (by name) is reused; a device that already registered keeps its config.json.
// Usage: node scripts/quickstart.mjs <server url> <admin token file> <agent config.json> <device API port> <data dir>
import fs from 'node:fs/promises';

const [url, tokenFile, configFile, apiPort, dataDir] = process.argv.slice(2);
const token = (await fs.readFile(tokenFile, 'utf8').catch(() => '')).trim();
if (!token) {
  console.error(`No admin token in ${tokenFile}: it is shown only on the server's first start. Remove the data folder to start over.`);
  process.exit(1);
}

async function call(method, path, body) {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: { authorization: `APIToken ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const data = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}

/** The first entity `matches` finds, else a new one from `body`. */
const findOrCreate = async (path, matches, body) => (await call('GET', path)).find(matches) ?? call('POST', path, body);

const registry = await findOrCreate('/docker/registries/', (r) => r.url === '127.0.0.1:5123', {
  url: '127.0.0.1:5123',
  username: 'bosun',
  password: 'bosun-test-password',
});
const project = await findOrCreate('/docker/projects/', (p) => p.name === 'hello', {
  name: 'hello',
  description: 'npm start: the local agent',
  default_registry: registry.id,
});
const config = JSON.parse(await fs.readFile(configFile, 'utf8').catch(() => '{}'));
const writeConfig = async (c) => {
  await fs.writeFile(`${configFile}.tmp`, JSON.stringify(c, null, 2), { mode: 0o600 });
  await fs.rename(`${configFile}.tmp`, configFile);
};
if (!config.deviceApiKey) {
  const key = await call('POST', '/provisioning-keys/', { name: `quickstart-${Date.now()}`, project: project.id });
  await writeConfig({ ...config, apiEndpoint: url, apiKey: key.key, deviceType: 'generic-amd64' });
} else if (config.apiEndpoint !== url) {
  // the server moved (BOSUN_SERVER_PORT): the registered device follows it, with its own key
  await writeConfig({ ...config, apiEndpoint: url });
}

console.log(`
Bosun is up.
  dashboard    ${url}/
  API docs     ${url}/docs
  admin token  ${token}   (kept in ${tokenFile})
  log in       npx bosun login --server ${url} --token "$(cat ${tokenFile})"
  device       this machine's agent, in project "hello" (id ${project.id}); device API on 127.0.0.1:${apiPort}
               (its device key: dist/bosun-agent device-key --data-dir ${dataDir}/agent)

Then deploy a release and watch this device run it (then: curl 127.0.0.1:8080):
  npx bosun deploy hello --compose examples/docker-compose.yml
  npx bosun devices
`);
