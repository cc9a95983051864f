import { type FormEvent, useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { ApiError, api } from '../api';
import { Track, type Point } from './Track';

type Row = { ts: string; value?: number | boolean | string; location?: Point };
type Series = { field: string; type: string; last_ts: string | null };
const TYPES = ['float', 'int', 'bool', 'string', 'geo_point'] as const;
const AGGS = ['', 'avg', 'min', 'max', 'sum', 'count'] as const;
const local = (d: Date) => new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);

/** Any field of the device's logbook (GET /logbook/storage/read/), as a chart; a geo_point as a track. */
export function TelemetryChart({ deviceId }: { deviceId: string }) {
  const [field, setField] = useState('');
  const [type, setType] = useState<(typeof TYPES)[number]>('float');
  const [from, setFrom] = useState(() => local(new Date(Date.now() - 3600_000)));
  const [to, setTo] = useState(() => local(new Date(Date.now() + 60_000)));
  const [aggregation, setAggregation] = useState<(typeof AGGS)[number]>('');
  const [interval, setInterval] = useState('1m');
  /** what was plotted: the answer and the query it answers (the form may have changed since) */
  const [plot, setPlot] = useState<{ rows: Row[]; field: string; geo: boolean } | null>(null);
  const [error, setError] = useState<{ text: string; field?: string } | null>(null);
  const [known, setKnown] = useState<Series[]>([]);
  useEffect(() => {
    api<Series[]>('GET', `/logbook/storage/fields/?device_id=${encodeURIComponent(deviceId)}`).then(setKnown, () => setKnown([]));
  }, [deviceId]);
  /** a field it has: its type, and the hour up to its newest point */
  const pick = (name: string) => {
    setField(name);
    const s = known.find((k) => k.field === name);
    if (!s) return;
    setType(s.type as (typeof TYPES)[number]);
    if (s.last_ts) {
      const last = Date.parse(s.last_ts);
      setFrom(local(new Date(last - 3600_000)));
      setTo(local(new Date(last + 60_000)));
    }
  };
  const load = async (e?: FormEvent) => {
    e?.preventDefault();
    setError(null);
    const q = new URLSearchParams({
      device_id: deviceId,
      field,
      field_type: type,
      from_utc: new Date(from).toISOString(),
      to_utc: new Date(to).toISOString(),
      ...(aggregation ? { aggregation, interval } : {}),
    });
    api<Series[]>('GET', `/logbook/storage/fields/?device_id=${encodeURIComponent(deviceId)}`).then(setKnown, () => {});
    try {
      setPlot({ rows: await api<Row[]>('GET', `/logbook/storage/read/?${q}`), field, geo: type === 'geo_point' && !aggregation });
    } catch (err) {
      setPlot(null);
      setError({ text: (err as Error).message, ...(err instanceof ApiError && err.field ? { field: err.field } : {}) });
    }
  };
  const fieldError = (name: string) =>
    error?.field?.replace(/^\//, '') === name ? (
      <span className="error" id={`tm-${name}-error`}>
        {error.text}
      </span>
    ) : null;
  const described = (name: string) => (error?.field?.replace(/^\//, '') === name ? { 'aria-describedby': `tm-${name}-error`, 'aria-invalid': true } : {});
  return (
    <section aria-labelledby="telemetry-title">
      <h2 id="telemetry-title">Telemetry</h2>
      <form onSubmit={load} className="toolbar wrap">
        <label>
          Field
          <input value={field} onChange={(e) => pick(e.target.value)} list="fields" required {...described('field')} />
          {fieldError('field')}
        </label>
        <datalist id="fields">
          {known.map((s) => (
            <option key={`${s.field}/${s.type}`} value={s.field}>
              {s.type}
            </option>
          ))}
        </datalist>
        <label>
          Type
          <select value={type} onChange={(e) => setType(e.target.value as typeof type)}>
            {TYPES.map((t) => (
              <option key={t}>{t}</option>
            ))}
          </select>
        </label>
        <label>
          From
          <input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} required {...described('from_utc')} />
          {fieldError('from_utc')}
        </label>
        <label>
          To
          <input type="datetime-local" value={to} onChange={(e) => setTo(e.target.value)} required {...described('to_utc')} />
          {fieldError('to_utc')}
        </label>
        <label>
          Aggregation
          <select value={aggregation} onChange={(e) => setAggregation(e.target.value as typeof aggregation)} {...described('aggregation')}>
            {AGGS.map((a) => (
              <option key={a} value={a}>
                {a || 'none (raw points)'}
              </option>
            ))}
          </select>
          {fieldError('aggregation')}
        </label>
        <label>
          Interval
          <input
            value={interval}
            onChange={(e) => setInterval(e.target.value)}
            disabled={!aggregation}
            size={5}
            pattern="[0-9]+[smhd]"
            {...described('interval')}
          />
          {fieldError('interval')}
        </label>
        <button type="submit">Plot</button>
      </form>
      {error && !['field', 'from_utc', 'to_utc', 'aggregation', 'interval'].includes(error.field?.replace(/^\//, '') ?? '') && (
        <p className="error" role="alert">
          {error.text}
        </p>
      )}
      {plot && plot.rows.length === 0 && <p>No points in this range.</p>}
      {plot &&
        plot.rows.length > 0 &&
        (plot.geo ? <Track points={plot.rows.map((r) => ({ ...r.location!, ts: r.ts }))} /> : <Chart rows={plot.rows} label={plot.field} />)}
    </section>
  );
}

function Chart({ rows, label }: { rows: Row[]; label: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current!;
    const xs = rows.map((r) => Date.parse(r.ts) / 1000);
    const ys = rows.map((r) => (typeof r.value === 'boolean' ? Number(r.value) : typeof r.value === 'number' ? r.value : null));
    const width = () => Math.max(280, el.clientWidth);
    const plot = new uPlot(
      { width: width(), height: 260, series: [{}, { label, stroke: '#2563eb', width: 2, points: { show: rows.length < 200 } }], axes: [{}, {}] },
      [xs, ys],
      el,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: width(), height: 260 }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [rows, label]);
  return <div ref={box} className="chart" role="img" aria-label={`${label}: ${rows.length} points`} data-testid="telemetry-chart" />;
}
