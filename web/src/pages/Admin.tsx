import { type FormEvent, useCallback, useEffect, useState } from 'react';
import { api } from '../api';
import { Field, FormAlert, type FormError, formError } from '../forms';

type Row = Record<string, unknown> & { id: number };
interface Input {
  name: string;
  label: string;
  type?: 'text' | 'password' | 'number' | 'datetime-local';
  required?: boolean;
  hint?: string;
}

/** Registries (password write-only), projects, provisioning keys and API tokens (keys and tokens shown once). */
export function Admin() {
  return (
    <>
      <h1>Admin</h1>
      <Resource
        title="Registries"
        path="/docker/registries/"
        columns={['id', 'url', 'username']}
        inputs={[
          { name: 'url', label: 'URL', required: true },
          { name: 'username', label: 'Username' },
          { name: 'password', label: 'Password', type: 'password', hint: 'write-only: never shown again' },
        ]}
      />
      <Resource
        title="Projects"
        path="/docker/projects/"
        columns={['id', 'name', 'default_registry', 'devices']}
        inputs={[
          { name: 'name', label: 'Name', required: true },
          { name: 'default_registry', label: 'Default registry id', type: 'number' },
        ]}
      />
      <Resource
        title="Provisioning keys"
        path="/provisioning-keys/"
        columns={['id', 'name', 'project', 'created_at']}
        inputs={[
          { name: 'name', label: 'Name', required: true },
          { name: 'project', label: 'Project id', type: 'number' },
        ]}
        secret="key"
      />
      <Resource
        title="API tokens"
        path="/auth/tokens/"
        columns={['id', 'name', 'created_at', 'expires_at']}
        inputs={[
          { name: 'name', label: 'Name', required: true },
          { name: 'expires_at', label: 'Expires', type: 'datetime-local' },
        ]}
        secret="token"
      />
    </>
  );
}

function Resource({ title, path, columns, inputs, secret }: { title: string; path: string; columns: string[]; inputs: Input[]; secret?: string }) {
  const [rows, setRows] = useState<Row[]>([]);
  const [values, setValues] = useState<Record<string, string>>({});
  const [error, setError] = useState<FormError | null>(null);
  const [shown, setShown] = useState('');
  const id = title.toLowerCase().replace(/\W+/g, '-');
  const load = useCallback(() => api<Row[]>('GET', path).then(setRows, (err: Error) => setError({ message: err.message })), [path]);
  useEffect(() => void load(), [load]);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setShown('');
    const body: Record<string, unknown> = {};
    for (const i of inputs) {
      const v = values[i.name]?.trim() ?? '';
      if (v === '' && i.type !== 'password' && i.name !== 'username') continue;
      body[i.name] = i.type === 'number' ? Number(v) : i.type === 'datetime-local' ? new Date(v).toISOString() : v;
    }
    try {
      const created = await api<Row>('POST', path, body);
      if (secret) setShown(String(created[secret]));
      setValues({});
      await load();
    } catch (err) {
      setError(formError(err));
    }
  };
  const remove = async (row: Row) => {
    if (!confirm(`Delete ${title.toLowerCase()} ${row.id}?`)) return;
    try {
      await api('DELETE', `${path}${row.id}/`);
      await load();
    } catch (err) {
      setError(formError(err));
    }
  };
  return (
    <section aria-labelledby={id} className="card">
      <h2 id={id}>{title}</h2>
      <div className="scroll-x">
        <table>
          <thead>
            <tr>
              {columns.map((c) => (
                <th key={c} scope="col">
                  {c}
                </th>
              ))}
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id}>
                {columns.map((c) => (
                  <td key={c}>{Array.isArray(r[c]) ? (r[c] as unknown[]).length : String(r[c] ?? '–')}</td>
                ))}
                <td>
                  <button type="button" onClick={() => void remove(r)}>
                    Delete<span className="sr-only"> {String(r.name ?? r.url ?? r.id)}</span>
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <form onSubmit={create} className="toolbar wrap" aria-label={`New ${title.toLowerCase()}`}>
        {inputs.map((i) => (
          <Field key={i.name} scope={id} label={i.label} pointer={`/${i.name}`} error={error} {...(i.hint ? { hint: i.hint } : {})}>
            {(aria) => (
              <input
                type={i.type ?? 'text'}
                value={values[i.name] ?? ''}
                onChange={(e) => setValues((v) => ({ ...v, [i.name]: e.target.value }))}
                required={i.required}
                autoComplete={i.type === 'password' ? 'new-password' : 'off'}
                {...aria}
              />
            )}
          </Field>
        ))}
        <button type="submit">Create</button>
      </form>
      <FormAlert error={error} pointers={inputs.map((i) => `/${i.name}`)} />
      {shown && (
        <p role="status" className="secret">
          New {secret}, shown once — copy it now: <code data-testid="shown-once">{shown}</code>
        </p>
      )}
    </section>
  );
}
