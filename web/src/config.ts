// The server's settings for the dashboard (GET /dashboard/config, public), fetched once per page load.
import { useEffect, useState } from 'react';
import { api } from './api';

export interface DashboardConfig {
  /** a tile URL template and its attribution, when the server has map tiles configured */
  map_tiles: { url: string; attribution: string } | null;
}

let loading: Promise<DashboardConfig> | undefined;

/** The settings, or undefined while they load; without them (an error) the dashboard uses none. */
export function useDashboardConfig(): DashboardConfig | undefined {
  const [config, setConfig] = useState<DashboardConfig>();
  useEffect(() => {
    loading ??= api<DashboardConfig>('GET', '/dashboard/config').catch(() => ({ map_tiles: null }));
    let live = true;
    void loading.then((c) => live && setConfig(c));
    return () => {
      live = false;
    };
  }, []);
  return config;
}
