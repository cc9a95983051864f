import { useEffect, useRef, useState } from 'react';
import { events } from '../api';
import type { LogLine } from '../types';

/** Lines kept on the page; older ones go. */
const KEEP = 2000;

/** The device's log, live (GET /dongle/devices/{id}/logs/tail/), of one service or all; pausable. */
export function LogTail({ deviceId, services }: { deviceId: string; services: string[] }) {
  const [service, setService] = useState('');
  const [paused, setPaused] = useState(false);
  const [lines, setLines] = useState<LogLine[]>([]);
  const [held, setHeld] = useState(0);
  const [status, setStatus] = useState('connecting');
  const pending = useRef<LogLine[]>([]);
  const pausedRef = useRef(paused);
  pausedRef.current = paused;
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    setLines([]);
    pending.current = [];
    const stop = new AbortController();
    const q = new URLSearchParams({ limit: '200', ...(service ? { service } : {}) });
    // new lines are shown in batches, at most a few times a second
    const flush = setInterval(() => {
      if (pausedRef.current || !pending.current.length) return setHeld(pausedRef.current ? pending.current.length : 0);
      const add = pending.current;
      pending.current = [];
      setHeld(0);
      setLines((l) => [...l, ...add].slice(-KEEP));
    }, 200);
    void events(
      `/dongle/devices/${encodeURIComponent(deviceId)}/logs/tail/?${q}`,
      (e) => {
        pending.current.push(JSON.parse(e.data) as LogLine);
        if (pending.current.length > KEEP) pending.current.splice(0, pending.current.length - KEEP);
      },
      stop.signal,
      (connected, error) => setStatus(connected ? 'live' : `disconnected${error ? `: ${error}` : ''}`),
    );
    return () => {
      stop.abort();
      clearInterval(flush);
    };
  }, [deviceId, service]);

  // biome-ignore lint/correctness/useExhaustiveDependencies: new lines are what makes it scroll
  useEffect(() => {
    const el = box.current;
    if (el && !paused) el.scrollTop = el.scrollHeight;
  }, [lines, paused]);

  return (
    <section aria-labelledby="logs-title">
      <h2 id="logs-title">Logs</h2>
      <div className="toolbar">
        <label>
          Service
          <select value={service} onChange={(e) => setService(e.target.value)}>
            <option value="">all</option>
            {[...new Set(services)].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => setPaused(!paused)} aria-pressed={paused}>
          {paused ? 'Resume' : 'Pause'}
        </button>
        <span className="hint" aria-live="polite">
          {status}
          {paused && held > 0 && `, ${held} new lines held`}
        </span>
      </div>
      {/* biome-ignore lint/a11y/noNoninteractiveTabindex: a scrolling region must be reachable by keyboard */}
      <div role="log" className="logs" ref={box} tabIndex={0} aria-label="Log lines" data-testid="log-lines">
        {lines.map((l) => (
          <div key={l.id} className={l.stream}>
            <time dateTime={l.ts}>{l.ts.slice(11, 23)}</time> <span className="svc">{l.service ?? 'agent'}</span> {l.message}
          </div>
        ))}
      </div>
    </section>
  );
}
