import { useState } from 'react';
import { type ApiError, supervisor } from '../api';
import { useFleet } from '../fleet';
import { Link } from '../router';
import { type Device, releaseSummary } from '../types';
import { CommandConsole } from './CommandConsole';
import { LogTail } from './LogTail';
import { TelemetryChart } from './Telemetry';

/** One device: its services and their actions, its live log, a command console, its telemetry. */
export function DevicePage({ id }: { id: string }) {
  const fleet = useFleet();
  const d = fleet.devices.get(id);
  if (!d) return <p>{fleet.connected ? `No device ${id}.` : 'Loading…'}</p>;
  const r = releaseSummary(d);
  return (
    <article aria-labelledby="device-title">
      <p>
        <Link to="/">← Fleet</Link>
      </p>
      <h1 id="device-title">{d.name}</h1>
      <dl className="facts">
        <dt>State</dt>
        <dd data-testid="device-online">{d.online ? 'online' : 'offline'}</dd>
        <dt>Status</dt>
        <dd data-testid="device-status">{d.state?.status ?? 'no report'}</dd>
        <dt>UUID</dt>
        <dd>
          <code>{d.unit_id}</code>
        </dd>
        <dt>Agent</dt>
        <dd>{d.agent_version ?? '–'}</dd>
        <dt>Release / target</dt>
        <dd data-testid="device-release">
          {r.release} / {r.target}
        </dd>
        <dt>Last seen</dt>
        <dd>{d.last_seen ? new Date(d.last_seen).toLocaleString() : 'never'}</dd>
      </dl>
      {d.target_error && (
        <p className="error" role="alert">
          Target error: {d.target_error}
        </p>
      )}
      <Services d={d} />
      <LogTail deviceId={d.id} services={Object.values(d.state?.apps ?? {}).flatMap((a) => Object.keys(a.services))} />
      <CommandConsole deviceId={d.id} />
      <TelemetryChart deviceId={d.id} />
    </article>
  );
}

function Services({ d }: { d: Device }) {
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const [busy, setBusy] = useState(false);
  const act = async (label: string, path: string, data?: unknown) => {
    setBusy(true);
    setMessage({ text: `${label}…`, error: false });
    try {
      await supervisor(d.unit_id, path, 'POST', data);
      setMessage({ text: `${label}: done`, error: false });
    } catch (err) {
      const e = err as ApiError;
      setMessage({ text: `${label} refused${e.status === 423 ? ' (update lock)' : ''}: ${e.message}`, error: true });
    } finally {
      setBusy(false);
    }
  };
  const apps = Object.entries(d.state?.apps ?? {});
  return (
    <section aria-labelledby="services-title">
      <h2 id="services-title">Services</h2>
      {apps.length === 0 && <p>No app reported yet.</p>}
      <table className="services">
        <thead>
          <tr>
            <th scope="col">Service</th>
            <th scope="col">App</th>
            <th scope="col">State</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {apps.flatMap(([appId, a]) =>
            Object.entries(a.services).map(([name, s]) => (
              <tr key={`${appId}/${name}`} data-service={name}>
                <th scope="row">{name}</th>
                <td>
                  {appId} (release {a.release ?? '–'})
                </td>
                <td>
                  <span data-testid="service-status">{s.status ?? '–'}</span>
                  {s.download_progress !== null && s.download_progress < 100 && (
                    <progress max={100} value={s.download_progress} aria-label={`${name} download`} />
                  )}
                  {s.error && <div className="error">{s.error}</div>}
                </td>
                <td className="actions">
                  {(['restart', 'stop', 'start'] as const).map((verb) => (
                    <button
                      key={verb}
                      type="button"
                      disabled={busy}
                      onClick={() => act(`${verb} ${name}`, `v2/applications/${appId}/${verb}-service`, { serviceName: name })}
                    >
                      {verb[0]!.toUpperCase() + verb.slice(1)}
                      <span className="sr-only"> {name}</span>
                    </button>
                  ))}
                </td>
              </tr>
            )),
          )}
        </tbody>
      </table>
      <p>
        <button type="button" disabled={busy} onClick={() => confirm(`Reboot ${d.name}?`) && act('reboot', 'v1/reboot')}>
          Reboot device
        </button>
      </p>
      {message && (
        <p className={message.error ? 'error' : 'hint'} role="status">
          {message.text}
        </p>
      )}
    </section>
  );
}
