import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { session } from './api';
import { startFleet, stopFleet } from './fleet';
import { Admin } from './pages/Admin';
import { DevicePage } from './pages/Device';
import { Fleet } from './pages/Fleet';
import { Login } from './pages/Login';
import { Releases } from './pages/Releases';
import { Link, navigate, usePath } from './router';
import './styles.css';

function App() {
  const [token, setToken] = useState(session.token());
  const path = usePath();
  useEffect(() => {
    const out = () => {
      session.clear();
      stopFleet();
      setToken(null);
    };
    window.addEventListener('bosun:unauthorized', out);
    return () => window.removeEventListener('bosun:unauthorized', out);
  }, []);
  useEffect(() => {
    if (token) startFleet();
  }, [token]);
  if (!token) return <Login onLogin={(t) => (session.set(t), setToken(t))} />;
  const logout = () => {
    session.clear();
    stopFleet();
    setToken(null);
    navigate('/');
  };
  const device = path.match(/^\/devices\/([^/]+)$/);
  return (
    <>
      <header className="top">
        <strong className="brand">Bosun</strong>
        <nav aria-label="Main">
          <Link to="/">Fleet</Link>
          <Link to="/releases">Releases</Link>
          <Link to="/admin">Admin</Link>
        </nav>
        <button type="button" className="link" onClick={logout}>
          Log out
        </button>
      </header>
      <main>
        {device ? (
          <DevicePage id={decodeURIComponent(device[1]!)} />
        ) : path === '/releases' ? (
          <Releases />
        ) : path === '/admin' ? (
          <Admin />
        ) : path === '/' ? (
          <Fleet />
        ) : (
          <p>
            No such page. <Link to="/">Fleet</Link>
          </p>
        )}
      </main>
    </>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
