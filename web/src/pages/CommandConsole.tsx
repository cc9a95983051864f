import { type FormEvent, useState } from 'react';
import { api } from '../api';

interface Result {
  jid: string;
  command: string;
  state: string;
  success?: boolean;
  return?: unknown;
  error?: string;
}

/** Runs a command on the device (POST …/execute_raw/) and shows its result once it came back. */
export function CommandConsole({ deviceId }: { deviceId: string }) {
  const [command, setCommand] = useState('test.ping');
  const [results, setResults] = useState<Result[]>([]);
  const [busy, setBusy] = useState(false);
  const base = `/dongle/devices/${encodeURIComponent(deviceId)}`;
  const update = (jid: string, r: Partial<Result>) => setResults((rs) => rs.map((x) => (x.jid === jid ? { ...x, ...r } : x)));
  const run = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    const cmd = command.trim();
    try {
      const { jid } = await api<{ jid: string }>('POST', `${base}/execute_raw/`, { command: cmd });
      setResults((rs) => [{ jid, command: cmd, state: 'pending' }, ...rs].slice(0, 20));
      for (;;) {
        const r = await api<{ state: string; success?: boolean; return?: unknown }>('GET', `${base}/command_result/${jid}/`);
        if (r.state !== 'pending') {
          update(jid, { state: r.state, ...(r.success !== undefined ? { success: r.success } : {}), return: r.return });
          break;
        }
        await new Promise((res) => setTimeout(res, 500));
      }
    } catch (err) {
      setResults((rs) => [{ jid: `error-${Date.now()}`, command: cmd, state: 'refused', error: (err as Error).message }, ...rs].slice(0, 20));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section aria-labelledby="console-title">
      <h2 id="console-title">Command console</h2>
      <form onSubmit={run} className="toolbar">
        <label className="grow">
          Command
          <input value={command} onChange={(e) => setCommand(e.target.value)} list="commands" spellCheck={false} required />
        </label>
        <datalist id="commands">
          <option value="test.ping" />
          <option value="grains.items" />
          <option value="docker.ps" />
          <option value="docker.logs main tail=10" />
        </datalist>
        <button type="submit" disabled={busy}>
          {busy ? 'Running…' : 'Execute'}
        </button>
      </form>
      <ol className="results" aria-live="polite" data-testid="command-results">
        {results.map((r) => (
          <li key={r.jid}>
            <code>{r.command}</code> — <span className={r.success === false || r.error ? 'error' : ''}>{r.error ?? r.state}</span>
            {r.return !== undefined && <pre>{typeof r.return === 'string' ? r.return : JSON.stringify(r.return, null, 2)}</pre>}
          </li>
        ))}
      </ol>
    </section>
  );
}
