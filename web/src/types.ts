// What the operator API answers (see /openapi.json).

export interface ServiceState {
  status: string | null;
  download_progress: number | null;
  error: string | null;
}
export interface AppState {
  release: number | null;
  target_release: number | null;
  update_status: string | null;
  services: Record<string, ServiceState>;
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
  state: { reported_at: string; status: 'idle' | 'updating' | 'error'; apps: Record<string, AppState> } | null;
  target_error: string | null;
}
export interface Project {
  id: number;
  name: string;
  description?: string;
  default_registry: number | null;
  devices: string[];
}
export interface Container {
  name: string;
  image: string;
  tag: string;
}
export interface Release {
  id: number;
  version: string;
  devices: string[];
  containers: Container[];
  successful_deployments: string[];
  created_at: string;
}
export interface Deployment {
  device: string;
  state: 'pending' | 'downloading' | 'applying' | 'succeeded' | 'failed' | 'superseded';
  error: string | null;
  updated_at: string;
  finished_at: string | null;
}
export interface LogLine {
  id: number;
  ts: string;
  stream: 'stdout' | 'stderr' | 'system';
  app_id: number | null;
  service: string | null;
  release_id: number | null;
  message: string;
}

/** Per app, the release it runs and the one it is given, and the overall download progress. */
export function releaseSummary(d: Device): { release: string; target: string; progress: number | null } {
  const apps = Object.values(d.state?.apps ?? {});
  const list = (f: (a: AppState) => number | null) => apps.map((a) => f(a) ?? '–').join(', ') || '–';
  const progress = apps.flatMap((a) => Object.values(a.services).map((s) => s.download_progress)).filter((p): p is number => p !== null);
  return {
    release: list((a) => a.release),
    target: list((a) => a.target_release),
    progress: progress.length ? Math.round(progress.reduce((x, y) => x + y, 0) / progress.length) : null,
  };
}
