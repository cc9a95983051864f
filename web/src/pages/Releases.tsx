import { useCallback, useEffect, useState } from 'react';
import { api } from '../api';
import { useFleet } from '../fleet';
import type { Deployment, Project, Release } from '../types';
import { ComposeForm } from './ComposeForm';
import { ReleaseForm } from './ReleaseForm';

/** A project's releases: each one's deployment progress across its devices, which one is active, a new one. */
export function Releases() {
  const [projects, setProjects] = useState<Project[]>([]);
  const [project, setProject] = useState<number | null>(null);
  const [releases, setReleases] = useState<Release[]>([]);
  const [deployments, setDeployments] = useState<Record<number, Deployment[]>>({});
  const [error, setError] = useState('');
  const [from, setFrom] = useState<'compose' | 'form'>('compose');
  const fleet = useFleet();

  useEffect(() => {
    api<Project[]>('GET', '/docker/projects/')
      .then((ps) => {
        setProjects(ps);
        setProject((p) => p ?? ps[0]?.id ?? null);
      })
      .catch((err: Error) => setError(err.message));
  }, []);

  const refresh = useCallback(async () => {
    if (project === null) return;
    const rs = (await api<Release[]>('GET', `/docker/projects/${project}/releases/`)).sort((a, b) => b.id - a.id);
    setReleases(rs);
    const ds = await Promise.all(rs.slice(0, 10).map((r) => api<Deployment[]>('GET', `/docker/projects/${project}/releases/${r.id}/deployments/`)));
    setDeployments(Object.fromEntries(rs.slice(0, 10).map((r, i) => [r.id, ds[i]!])));
  }, [project]);

  // deployments move as devices report: follow them while the page is open
  useEffect(() => {
    void refresh().catch((err: Error) => setError(err.message));
    const t = setInterval(() => void refresh().catch((err: Error) => setError(err.message)), 2000);
    return () => clearInterval(t);
  }, [refresh]);

  const running = (releaseId: number) =>
    [...fleet.devices.values()].filter((d) => project !== null && d.state?.apps[String(project)]?.release === releaseId).length;

  return (
    <section aria-labelledby="releases-title">
      <h1 id="releases-title">Releases</h1>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <label>
        Project{' '}
        <select value={project ?? ''} onChange={(e) => setProject(Number(e.target.value))}>
          {projects.map((p) => (
            <option key={p.id} value={p.id}>
              {p.name} ({p.id})
            </option>
          ))}
        </select>
      </label>
      {projects.length === 0 && <p>No project yet: create one under Admin.</p>}
      <fieldset className="choice">
        <legend>New release from</legend>
        {(['compose', 'form'] as const).map((f) => (
          <label key={f}>
            <input type="radio" name="from" checked={from === f} onChange={() => setFrom(f)} /> {f === 'compose' ? 'a compose file' : 'a form'}
          </label>
        ))}
      </fieldset>
      {project !== null &&
        (from === 'compose' ? (
          <ComposeForm key={project} project={project} onCreated={() => void refresh()} />
        ) : (
          <ReleaseForm key={project} project={project} onCreated={() => void refresh()} />
        ))}
      <ul className="releases" aria-label="Releases of the project">
        {releases.map((r, i) => (
          <li key={r.id} data-release={r.version}>
            <h3>
              {r.version} <small>#{r.id}</small> {i === 0 && <span className="badge">active (newest)</span>}
            </h3>
            <p className="hint">
              {r.containers.map((c) => `${c.name}: ${c.image}:${c.tag}`).join(', ') || 'no containers'} · running on {running(r.id)} device(s) · created{' '}
              {new Date(r.created_at).toLocaleString()}
            </p>
            <Progress deployments={deployments[r.id]} />
          </li>
        ))}
      </ul>
    </section>
  );
}

function Progress({ deployments }: { deployments: Deployment[] | undefined }) {
  if (!deployments) return null;
  if (!deployments.length) return <p className="hint">No device to deploy to.</p>;
  const done = deployments.filter((d) => d.state === 'succeeded').length;
  return (
    <details>
      <summary>
        <progress max={deployments.length} value={done} aria-label="deployed" /> {done} of {deployments.length} deployed
        {deployments.some((d) => d.state === 'failed') && <span className="error"> · {deployments.filter((d) => d.state === 'failed').length} failed</span>}
      </summary>
      <table>
        <thead>
          <tr>
            <th scope="col">Device</th>
            <th scope="col">State</th>
            <th scope="col">Error</th>
          </tr>
        </thead>
        <tbody>
          {deployments.map((d) => (
            <tr key={d.device}>
              <td>{d.device}</td>
              <td data-testid="deployment-state">{d.state}</td>
              <td className="error">{d.error}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </details>
  );
}
