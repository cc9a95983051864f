// A geo_point track on its own axes (longitude across, latitude up), or over map tiles when the
// server has a tile URL configured (TileTrack.tsx): by default no map server is assumed reachable.
import { useDashboardConfig } from '../config';
import { TileTrack } from './TileTrack';

export interface Point {
  lat: number;
  lon: number;
  ts?: string;
}

const W = 640;
const H = 360;
const PAD = 48;
/** room on the left for the latitude ticks and their axis label */
const LEFT = 80;

export function Track({ points }: { points: Point[] }) {
  const config = useDashboardConfig();
  if (!config) return null;
  return config.map_tiles ? <TileTrack points={points} tiles={config.map_tiles} /> : <AxesTrack points={points} />;
}

function AxesTrack({ points }: { points: Point[] }) {
  const lons = points.map((p) => p.lon);
  const lats = points.map((p) => p.lat);
  const [x0, x1] = span(Math.min(...lons), Math.max(...lons));
  const [y0, y1] = span(Math.min(...lats), Math.max(...lats));
  const x = (lon: number) => LEFT + ((lon - x0) / (x1 - x0)) * (W - LEFT - PAD);
  const y = (lat: number) => H - PAD - ((lat - y0) / (y1 - y0)) * (H - 2 * PAD);
  const ticks = (a: number, b: number) => Array.from({ length: 5 }, (_, i) => a + ((b - a) * i) / 4);
  const first = points[0]!;
  const last = points.at(-1)!;
  return (
    <svg viewBox={`0 0 ${W} ${H}`} className="track" role="img" aria-label={`track of ${points.length} points`} data-testid="telemetry-track">
      <rect x={LEFT} y={PAD} width={W - LEFT - PAD} height={H - 2 * PAD} className="frame" />
      {ticks(x0, x1).map((t) => (
        <text key={`x${t}`} x={x(t)} y={H - PAD + 16} textAnchor="middle">
          {t.toFixed(4)}
        </text>
      ))}
      {ticks(y0, y1).map((t) => (
        <text key={`y${t}`} x={LEFT - 4} y={y(t) + 4} textAnchor="end">
          {t.toFixed(4)}
        </text>
      ))}
      <text x={(W + LEFT - PAD) / 2} y={H - 8} textAnchor="middle">
        longitude
      </text>
      <text x={12} y={H / 2} textAnchor="middle" transform={`rotate(-90 12 ${H / 2})`}>
        latitude
      </text>
      <polyline points={points.map((p) => `${x(p.lon)},${y(p.lat)}`).join(' ')} className="path" />
      <circle cx={x(first.lon)} cy={y(first.lat)} r={5} className="start">
        <title>start {first.ts}</title>
      </circle>
      <circle cx={x(last.lon)} cy={y(last.lat)} r={5} className="end">
        <title>end {last.ts}</title>
      </circle>
    </svg>
  );
}

/** A range around [a, b], never empty (a single point still gets axes). */
function span(a: number, b: number): [number, number] {
  const pad = (b - a) * 0.05 || 0.001;
  return [a - pad, b + pad];
}
