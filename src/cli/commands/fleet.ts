// The reads of the fleet: devices, one device, projects, registries, tokens.
import type { Command } from 'commander';
import type { Api } from '../api.js';
import { ago, printJson, printTable } from '../output.js';
import { findDevice, findProject, type Device, type Project } from '../resources.js';

/** Per app: "release 3" when it runs its target, "2 → 3" while it moves to it. */
function releaseText(d: Device): string {
  const apps = Object.values(d.state?.apps ?? {});
  if (!apps.length) return '-';
  return apps
    .map((a) => (a.release === a.target_release || a.target_release === null ? `${a.release ?? '-'}` : `${a.release ?? '-'} → ${a.target_release}`))
    .join(', ');
}

export function fleetCommands(program: Command, api: () => Api): void {
  program
    .command('devices')
    .description('list the devices: online, last seen, status, release (→ target while updating)')
    .option('--project <project>', 'only the devices of this project (id or name)')
    .option('--online', 'only the devices heard from in the last 2 minutes')
    .option('--json', 'print JSON')
    .option('-q, --quiet', 'print only the ids, one a line (for scripts: D=$(bosun devices -q --project hello))')
    .action(async (opts: { project?: string; online?: boolean; json?: boolean; quiet?: boolean }) => {
      const client = api();
      let devices = await client.get<Device[]>('/dongle/devices/');
      if (opts.project) {
        const project = await findProject(client, opts.project);
        devices = devices.filter((d) => d.projects.includes(project.id));
      }
      if (opts.online) devices = devices.filter((d) => d.online);
      if (opts.json) return printJson(devices);
      if (opts.quiet) return void process.stdout.write(devices.map((d) => `${d.id}\n`).join(''));
      printTable(
        ['ID', 'NAME', 'ONLINE', 'LAST SEEN', 'STATUS', 'RELEASE'],
        devices.map((d) => [
          d.id,
          d.name,
          d.online ? 'yes' : 'no',
          ago(d.last_seen),
          d.target_error ? 'target error' : (d.state?.status ?? '-'),
          releaseText(d),
        ]),
      );
    });

  program
    .command('device <device>')
    .description('one device (by id, unit id or name): its apps, release vs target, services, last seen')
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { json?: boolean }) => {
      const d = await findDevice(api(), ref);
      if (opts.json) return printJson(d);
      const out = [
        `id:            ${d.id}`,
        `name:          ${d.name}`,
        `unit id:       ${d.unit_id}`,
        `type:          ${d.device_type}`,
        `online:        ${d.online ? 'yes' : 'no'} (last seen ${ago(d.last_seen)}${d.last_seen ? `, ${d.last_seen}` : ''})`,
        `agent:         ${d.agent_version ?? '-'}`,
        `status:        ${d.state?.status ?? 'no report yet'}`,
        `deployed:      ${d.docker_releases.length ? d.docker_releases.join(', ') : '-'}`,
      ];
      if (d.target_error) out.push(`target error:  ${d.target_error}`);
      for (const [appId, app] of Object.entries(d.state?.apps ?? {})) {
        out.push('', `app ${appId}: release ${app.release ?? '-'}, target ${app.target_release ?? '-'}, ${app.update_status ?? '-'}`);
        for (const [name, s] of Object.entries(app.services)) {
          const progress = s.download_progress !== null && s.status === 'Downloading' ? ` ${s.download_progress}%` : '';
          out.push(`  ${name.padEnd(20)} ${s.status ?? '-'}${progress}${s.error ? `  error: ${s.error}` : ''}`);
        }
      }
      process.stdout.write(`${out.join('\n')}\n`);
    });

  program
    .command('projects')
    .description('list the projects')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const projects = await api().get<Project[]>('/docker/projects/');
      if (opts.json) return printJson(projects);
      printTable(
        ['ID', 'NAME', 'DEVICES', 'DEFAULT REGISTRY'],
        projects.map((p) => [p.id, p.name, p.devices.length, p.default_registry]),
      );
    });

  program
    .command('registries')
    .description('list the registries (passwords are write-only: never shown)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const registries = await api().get<{ id: number; url: string; username: string }[]>('/docker/registries/');
      if (opts.json) return printJson(registries);
      printTable(
        ['ID', 'URL', 'USERNAME'],
        registries.map((r) => [r.id, r.url, r.username]),
      );
    });

  program
    .command('tokens')
    .description('list the API tokens (names and dates; a token itself is shown only when created)')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const tokens = await api().get<{ id: number; name: string; created_at: string; expires_at: string | null }[]>('/auth/tokens/');
      if (opts.json) return printJson(tokens);
      printTable(
        ['ID', 'NAME', 'CREATED', 'EXPIRES'],
        tokens.map((t) => [t.id, t.name, t.created_at, t.expires_at ?? 'never']),
      );
    });
}
