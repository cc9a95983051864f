import { type FormEvent, useState } from 'react';
import { api } from '../api';
import { Field, FormAlert, type FormError, formError } from '../forms';

interface ContainerDraft {
  key: number;
  name: string;
  image: string;
  tag: string;
  command: string;
  environment: string;
  ports: string;
  restart: string;
}
const FIELDS = ['name', 'image', 'tag', ...['command', 'environment', 'port_bindings', 'restart_policy'].map((f) => `startup_parameters/${f}`)];
let drafts = 0;
const blank = (): ContainerDraft => ({ key: ++drafts, name: '', image: '', tag: 'latest', command: '', environment: '', ports: '', restart: 'always' });

/** A release from a form (AutoPi's container list): each API error is shown next to its field. */
export function ReleaseForm({ project, onCreated }: { project: number; onCreated: () => void }) {
  const [version, setVersion] = useState('');
  const [containers, setContainers] = useState<ContainerDraft[]>([blank()]);
  const [error, setError] = useState<FormError | null>(null);
  const [created, setCreated] = useState('');
  const [busy, setBusy] = useState(false);
  const edit = (i: number, patch: Partial<ContainerDraft>) => setContainers((cs) => cs.map((c, j) => (j === i ? { ...c, ...patch } : c)));
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setCreated('');
    try {
      const body = {
        version,
        containers: containers.map((c) => ({
          name: c.name,
          image: c.image,
          tag: c.tag || 'latest',
          startup_parameters: {
            ...(c.command.trim() ? { command: c.command.trim() } : {}),
            ...(c.environment.trim()
              ? {
                  environment: c.environment
                    .split('\n')
                    .map((l) => l.trim())
                    .filter(Boolean),
                }
              : {}),
            ...(c.ports.trim() ? { port_bindings: c.ports.trim() } : {}),
            restart_policy: c.restart,
          },
        })),
      };
      const r = await api<{ id: number; version: string }>('POST', `/docker/projects/${project}/releases/`, body);
      setCreated(`Release ${r.version} (#${r.id}) created.`);
      onCreated();
    } catch (err) {
      setError(formError(err));
    } finally {
      setBusy(false);
    }
  };
  const pointers = ['/version', ...containers.flatMap((_, i) => FIELDS.map((f) => `/containers/${i}/${f}`))];
  return (
    <form onSubmit={submit} className="card" aria-labelledby="new-release">
      <h2 id="new-release">New release</h2>
      <Field label="Version" pointer="/version" error={error}>
        {(aria) => <input value={version} onChange={(e) => setVersion(e.target.value)} required {...aria} />}
      </Field>
      {containers.map((c, i) => (
        <fieldset key={c.key}>
          <legend>Container {i + 1}</legend>
          <Field label="Name" pointer={`/containers/${i}/name`} error={error}>
            {(aria) => <input value={c.name} onChange={(e) => edit(i, { name: e.target.value })} required {...aria} />}
          </Field>
          <Field label="Image" pointer={`/containers/${i}/image`} error={error} hint="repository, without the registry host">
            {(aria) => <input value={c.image} onChange={(e) => edit(i, { image: e.target.value })} required {...aria} />}
          </Field>
          <Field label="Tag" pointer={`/containers/${i}/tag`} error={error}>
            {(aria) => <input value={c.tag} onChange={(e) => edit(i, { tag: e.target.value })} {...aria} />}
          </Field>
          <Field label="Command" pointer={`/containers/${i}/startup_parameters/command`} error={error} hint="split into words as a shell does">
            {(aria) => <input value={c.command} onChange={(e) => edit(i, { command: e.target.value })} {...aria} />}
          </Field>
          <Field label="Environment" pointer={`/containers/${i}/startup_parameters/environment`} error={error} hint="KEY=VALUE, one a line">
            {(aria) => <textarea rows={2} value={c.environment} onChange={(e) => edit(i, { environment: e.target.value })} {...aria} />}
          </Field>
          <Field label="Ports" pointer={`/containers/${i}/startup_parameters/port_bindings`} error={error} hint="host:container, comma-separated">
            {(aria) => <input value={c.ports} onChange={(e) => edit(i, { ports: e.target.value })} {...aria} />}
          </Field>
          <Field label="Restart" pointer={`/containers/${i}/startup_parameters/restart_policy`} error={error}>
            {(aria) => (
              <select value={c.restart} onChange={(e) => edit(i, { restart: e.target.value })} {...aria}>
                {['always', 'unless-stopped', 'on-failure', 'no'].map((p) => (
                  <option key={p}>{p}</option>
                ))}
              </select>
            )}
          </Field>
          {containers.length > 1 && (
            <button type="button" onClick={() => setContainers((cs) => cs.filter((_, j) => j !== i))}>
              Remove container {i + 1}
            </button>
          )}
        </fieldset>
      ))}
      <button type="button" onClick={() => setContainers((cs) => [...cs, blank()])}>
        Add a container
      </button>
      <FormAlert error={error} pointers={pointers} />
      {created && <p role="status">{created}</p>}
      <button type="submit" disabled={busy}>
        Create release
      </button>
    </form>
  );
}
