// `release create` and `deploy`: a release from a compose file, and deploy's wait for its devices,
// one progress line per device, until every device runs it (exit 0) or one fails (exit 7).
import type { Command } from 'commander';
import type { Api } from '../api.js';
import { readCompose } from '../composeFile.js';
import { CliError, EXIT } from '../errors.js';
import { printJson } from '../output.js';
import { ProgressView, type DeviceProgress } from '../progress.js';
import { findProject, type Deployment, type Device, type Project, type Release } from '../resources.js';

interface CreateOptions {
  compose: string;
  version?: string;
  json?: boolean;
}

/** `2024.05.01-101500`: a version that sorts by time, when none is given. */
const defaultVersion = (now = new Date()) => now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);

async function createRelease(api: Api, projectRef: string, opts: CreateOptions): Promise<{ project: Project; release: Release }> {
  const upload = readCompose(opts.compose);
  const project = await findProject(api, projectRef);
  const release = await api.post<Release>(`/docker/projects/${project.id}/releases/`, { version: opts.version ?? defaultVersion(), ...upload });
  return { project, release };
}

const created = (project: Project, r: Release) =>
  `release ${r.id} (version ${r.version}, ${r.version_hash}) of project ${project.name}: ${r.containers.map((c) => c.name).join(', ') || 'no services'}; ` +
  `${r.devices.length} device${r.devices.length === 1 ? '' : 's'}\n`;

export function releaseCommands(program: Command, api: () => Api): void {
  const release = program.command('release').description('releases of a project');
  release
    .command('create <project>')
    .description('create a release from a docker-compose.yml (its env_file files are sent along); devices get it at once')
    .requiredOption('--compose <file>', 'the compose file')
    .option('--version <version>', 'unique in the project (default: the time, e.g. 20240501-101500)')
    .option('--json', 'print the release as JSON')
    .action(async (projectRef: string, opts: CreateOptions) => {
      const { project, release: r } = await createRelease(api(), projectRef, opts);
      if (opts.json) printJson(r);
      else process.stdout.write(`created ${created(project, r)}`);
    });

  program
    .command('deploy <project>')
    .description('create a release from a compose file and follow it on every device of the project until all run it or one fails')
    .requiredOption('--compose <file>', 'the compose file')
    .option('--version <version>', 'unique in the project (default: the time)')
    .option('--timeout <seconds>', 'give up after this long (exit 9)', (v) => positive(v, '--timeout'))
    .option('--interval <ms>', 'how often to ask the server', (v) => positive(v, '--interval'), 1000)
    .action(async (projectRef: string, opts: CreateOptions & { timeout?: number; interval: number }) => {
      const client = api();
      const { project, release: r } = await createRelease(client, projectRef, opts);
      process.stdout.write(`created ${created(project, r)}`);
      if (!r.devices.length) {
        process.stdout.write('no device to wait for: devices that join the project get this release\n');
        return;
      }
      await follow(client, project, r, opts.timeout, opts.interval);
    });
}

function positive(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new CliError(`${name} takes a positive number, not "${v}"`, EXIT.USAGE);
  return n;
}

/** The release's download percentage on a device: the mean over its services that report one. */
function percentOf(device: Device | undefined, project: Project, release: Release): number | null {
  const app = device?.state?.apps[String(project.id)];
  if (!app || app.target_release !== release.id) return null;
  const values = Object.values(app.services)
    .map((s) => s.download_progress)
    .filter((p): p is number => p !== null);
  return values.length ? values.reduce((a, b) => a + b, 0) / values.length : null;
}

async function follow(api: Api, project: Project, release: Release, timeoutS: number | undefined, intervalMs: number): Promise<void> {
  const view = new ProgressView();
  const deadline = timeoutS === undefined ? Infinity : Date.now() + timeoutS * 1000;
  for (;;) {
    const [deployments, devices] = await Promise.all([
      api.get<Deployment[]>(`/docker/projects/${project.id}/releases/${release.id}/deployments/`),
      api.get<Device[]>('/dongle/devices/'),
    ]);
    const byId = new Map(devices.map((d) => [d.id, d]));
    const lines: DeviceProgress[] = deployments.map((dep) => {
      const d = byId.get(dep.device);
      const percent = dep.state === 'downloading' || dep.state === 'pending' ? percentOf(d, project, release) : null;
      const state = dep.state === 'pending' && d && !d.online ? 'pending (device offline)' : dep.state;
      return { name: d?.name ?? dep.device, state, percent, error: dep.error };
    });
    view.render(lines);
    const failed = lines.filter((l) => l.state === 'failed' || l.state === 'superseded');
    if (failed.length) {
      const why = failed.map((l) => `${l.name}: ${l.state === 'superseded' ? 'a newer release replaced it' : (l.error ?? 'failed')}`).join('\n');
      throw new CliError(`the deployment of release ${release.id} failed:\n${why}\nSee "bosun logs <device>" and "bosun device <device>".`, EXIT.DEPLOY_FAILED);
    }
    if (lines.every((l) => l.state === 'succeeded')) {
      process.stdout.write(`release ${release.id} runs on ${lines.length} device${lines.length === 1 ? '' : 's'}\n`);
      return;
    }
    if (Date.now() >= deadline) {
      throw new CliError(`gave up after ${timeoutS} s: ${lines.filter((l) => l.state !== 'succeeded').length} device(s) still deploying`, EXIT.TIMEOUT);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
