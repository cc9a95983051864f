import { type FormEvent, useState } from 'react';
import { api } from '../api';
import { Field, FormAlert, type FormError, formError } from '../forms';

interface EnvFile {
  /** the path as the compose file writes it under env_file */
  path: string;
  content: string;
}

/** A release from a docker-compose.yml (uploaded, or typed) and the env files it names. */
export function ComposeForm({ project, onCreated }: { project: number; onCreated: () => void }) {
  const [version, setVersion] = useState('');
  const [compose, setCompose] = useState('');
  const [envFiles, setEnvFiles] = useState<EnvFile[]>([]);
  const [error, setError] = useState<FormError | null>(null);
  const [created, setCreated] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setCreated('');
    try {
      const body = { version, compose, ...(envFiles.length ? { env_files: Object.fromEntries(envFiles.map((f) => [f.path, f.content])) } : {}) };
      const r = await api<{ id: number; version: string }>('POST', `/docker/projects/${project}/releases/`, body);
      setCreated(`Release ${r.version} (#${r.id}) created.`);
      onCreated();
    } catch (err) {
      setError(formError(err));
    } finally {
      setBusy(false);
    }
  };
  const read = async (files: FileList | null) => [...(files ?? [])].map(async (f) => ({ name: f.name, text: await f.text() }));
  return (
    <form onSubmit={submit} className="card" aria-labelledby="new-compose-release">
      <h2 id="new-compose-release">New release from a compose file</h2>
      <Field label="Version" pointer="/version" error={error} scope="compose">
        {(aria) => <input value={version} onChange={(e) => setVersion(e.target.value)} required {...aria} />}
      </Field>
      <div className="field">
        <label htmlFor="compose-upload">Compose file</label>
        <input
          id="compose-upload"
          type="file"
          accept=".yml,.yaml,text/yaml,application/yaml"
          onChange={async (e) => {
            const [f] = await Promise.all(await read(e.target.files));
            if (f) setCompose(f.text);
          }}
        />
      </div>
      <Field label="docker-compose.yml" pointer="/compose" error={error} scope="compose" hint="uploaded above, or typed here">
        {(aria) => <textarea rows={8} className="code" value={compose} onChange={(e) => setCompose(e.target.value)} required spellCheck={false} {...aria} />}
      </Field>
      <div className="field">
        <label htmlFor="env-upload">Env files it names</label>
        <input
          id="env-upload"
          type="file"
          multiple
          onChange={async (e) => {
            const files = await Promise.all(await read(e.target.files));
            setEnvFiles((fs) => [...fs, ...files.map((f) => ({ path: `./${f.name}`, content: f.text }))]);
          }}
        />
      </div>
      {envFiles.map((f, i) => (
        <Field key={f.path} label={`Env file ${i + 1}: its path in the compose file`} pointer={`/env_files/${f.path}`} error={error} scope="compose">
          {(aria) => <input value={f.path} onChange={(e) => setEnvFiles((fs) => fs.map((x, j) => (j === i ? { ...x, path: e.target.value } : x)))} {...aria} />}
        </Field>
      ))}
      <FormAlert error={error} pointers={['/version', '/compose', ...envFiles.map((f) => `/env_files/${f.path}`)]} />
      {created && <p role="status">{created}</p>}
      <button type="submit" disabled={busy}>
        Create release
      </button>
    </form>
  );
}
