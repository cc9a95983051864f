import { useMemo, useState, useSyncExternalStore } from 'react';
import { useFleet } from '../fleet';
import { Link, navigate } from '../router';
import { type Device, releaseSummary } from '../types';
import { VirtualList } from '../VirtualList';

const narrow = window.matchMedia('(max-width: 700px)');
const useNarrow = () =>
  useSyncExternalStore(
    (l) => (narrow.addEventListener('change', l), () => narrow.removeEventListener('change', l)),
    () => narrow.matches,
  );

/** Every device, live: online state, agent version, release vs target, status and download progress. */
export function Fleet() {
  const fleet = useFleet();
  const [query, setQuery] = useState('');
  const [online, setOnline] = useState('all');
  const [status, setStatus] = useState('all');
  const isNarrow = useNarrow();
  const shown = useMemo(() => {
    const q = query.trim().toLowerCase();
    return [...fleet.devices.values()]
      .filter(
        (d) =>
          (online === 'all' || String(d.online) === online) &&
          (status === 'all' || (d.state?.status ?? 'unknown') === status) &&
          (!q || d.name.toLowerCase().includes(q) || d.unit_id.includes(q) || d.id.toLowerCase().includes(q) || (d.agent_version ?? '').includes(q)),
      )
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }, [fleet, query, online, status]);
  const onlineCount = useMemo(() => [...fleet.devices.values()].filter((d) => d.online).length, [fleet]);
  return (
    <section aria-labelledby="fleet-title">
      <h1 id="fleet-title">Fleet</h1>
      <p className="summary" aria-live="polite">
        {fleet.devices.size} devices, {onlineCount} online{' '}
        <span className={fleet.connected ? 'live on' : 'live'}>{fleet.connected ? '● live' : `○ connecting${fleet.error ? ` (${fleet.error})` : ''}`}</span>
      </p>
      <form className="filters" aria-label="Filter devices" onSubmit={(e) => e.preventDefault()}>
        <label>
          Search
          <input type="search" value={query} onChange={(e) => setQuery(e.target.value)} placeholder="name, uuid, version" />
        </label>
        <label>
          Online
          <select value={online} onChange={(e) => setOnline(e.target.value)}>
            <option value="all">all</option>
            <option value="true">online</option>
            <option value="false">offline</option>
          </select>
        </label>
        <label>
          Status
          <select value={status} onChange={(e) => setStatus(e.target.value)}>
            <option value="all">all</option>
            <option value="idle">idle</option>
            <option value="updating">updating</option>
            <option value="error">error</option>
            <option value="unknown">no report</option>
          </select>
        </label>
      </form>
      <div className="row head" aria-hidden="true">
        <span>Device</span>
        <span>Online</span>
        <span>Agent</span>
        <span>Release / target</span>
        <span>Status</span>
      </div>
      {shown.length === 0 && <p>{fleet.devices.size ? 'No device matches.' : 'No device yet: provision one with a provisioning key (Admin).'}</p>}
      <VirtualList
        items={shown}
        rowHeight={isNarrow ? 76 : 44}
        label="Devices"
        keyOf={(d) => d.id}
        render={(d) => <DeviceRow d={d} />}
        onOpen={(d) => navigate(devicePath(d))}
      />
    </section>
  );
}

const devicePath = (d: Device) => `/devices/${encodeURIComponent(d.id)}`;

function DeviceRow({ d }: { d: Device }) {
  const r = releaseSummary(d);
  const status = d.state?.status ?? 'no report';
  return (
    <div className="row" data-device={d.id}>
      {/* reached with the list's keys, not Tab (VirtualList.tsx) */}
      <Link to={devicePath(d)} className="name" tabIndex={-1}>
        {d.name}
      </Link>
      <span className={d.online ? 'ok' : 'muted'}>{d.online ? 'online' : 'offline'}</span>
      <span>{d.agent_version ?? '–'}</span>
      <span>
        {r.release} / {r.target}
      </span>
      <span className={`status ${status}`} data-testid="status">
        {status}
        {r.progress !== null && r.progress < 100 && (
          <progress max={100} value={r.progress} aria-label={`download ${r.progress}%`}>
            {r.progress}%
          </progress>
        )}
        {d.target_error && <span title={d.target_error}> ⚠</span>}
      </span>
    </div>
  );
}
