import { type FormEvent, useState } from 'react';
import { ApiError, api } from '../api';

/** Takes an API token and checks it with a call before keeping it (session storage: this tab only). */
export function Login({ onLogin }: { onLogin: (token: string) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError('');
    try {
      await api('GET', '/auth/tokens/', undefined, token.trim());
      onLogin(token.trim());
    } catch (err) {
      setError(err instanceof ApiError && err.status === 401 ? 'This token is not valid (unknown, revoked or expired).' : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="login">
      <h1>Bosun</h1>
      <form onSubmit={submit} aria-describedby="login-help">
        <label htmlFor="token">API token</label>
        <input
          id="token"
          type="password"
          autoComplete="current-password"
          value={token}
          onChange={(e) => setToken(e.target.value)}
          required
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? 'token-error' : undefined}
        />
        {error && (
          <p id="token-error" className="error" role="alert">
            {error}
          </p>
        )}
        <p id="login-help" className="hint">
          The server printed an admin token at its first start (<code>data/admin-token</code> with <code>npm start</code>).
        </p>
        <button type="submit" disabled={busy || !token.trim()}>
          Log in
        </button>
      </form>
    </main>
  );
}
