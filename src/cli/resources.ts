// The API's resources as the CLI reads them (only the fields it uses), and how a command's
// argument names one: a device by id, unit id or name; a project by id or name.
import type { Api } from './api.js';
import { CliError, EXIT } from './errors.js';

export interface ServiceSummary {
  status: string | null;
  download_progress: number | null;
  error: string | null;
}
export interface AppSummary {
  release: number | null;
  target_release: number | null;
  update_status: string | null;
  services: Record<string, ServiceSummary>;
}
export interface Device {
  id: string;
  unit_id: string;
  name: string;
  device_type: string;
  online: boolean;
  last_seen: string | null;
  agent_version: string | null;
  docker_releases: number[];
  projects: number[];
  state: { reported_at: string; status: 'idle' | 'updating' | 'error'; apps: Record<string, AppSummary> } | null;
  target_error: string | null;
}
export interface Project {
  id: number;
  name: string;
  devices: string[];
  default_registry: number | null;
}
export interface Release {
  id: number;
  version: string;
  version_hash: string;
  devices: string[];
  containers: { name: string; image: string; tag: string }[];
}
export interface Deployment {
  device: string;
  state: 'pending' | 'downloading' | 'applying' | 'succeeded' | 'failed' | 'superseded';
  error: string | null;
}

export async function findDevice(api: Api, ref: string): Promise<Device> {
  const devices = await api.get<Device[]>('/dongle/devices/');
  const found = devices.find((d) => d.id === ref) ?? devices.find((d) => d.unit_id === ref) ?? devices.filter((d) => d.name === ref);
  if (!Array.isArray(found)) return found;
  if (found.length === 1) return found[0]!;
  if (found.length > 1) throw new CliError(`${found.length} devices are named "${ref}": give its id (bosun devices)`, EXIT.USAGE);
  const prefixed = devices.filter((d) => d.id.startsWith(ref));
  if (ref.length >= 7 && prefixed.length === 1) return prefixed[0]!;
  throw new CliError(`no device "${ref}": list them with "bosun devices"`, EXIT.NOT_FOUND);
}

export async function findProject(api: Api, ref: string): Promise<Project> {
  const projects = await api.get<Project[]>('/docker/projects/');
  const found = /^\d+$/.test(ref) ? projects.find((p) => p.id === Number(ref)) : projects.find((p) => p.name === ref);
  if (!found) throw new CliError(`no project "${ref}": list them with "bosun projects"`, EXIT.NOT_FOUND);
  return found;
}
