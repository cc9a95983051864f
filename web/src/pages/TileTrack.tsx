// A geo_point track over map tiles, used only when the server has a tile URL template configured
// (GET /dashboard/config): Web Mercator (tiles.ts), the view fitted to the track.
import { fitView, project, tilesFor, tileUrl } from '../tiles';
import type { Point } from './Track';

const W = 640;
const H = 360;

export function TileTrack({ points, tiles }: { points: Point[]; tiles: { url: string; attribution: string } }) {
  const view = fitView(points, W, H);
  const at = (p: Point) => {
    const { x, y } = project(p, view.z);
    return { x: x - view.left, y: y - view.top };
  };
  const first = at(points[0]!);
  const last = at(points.at(-1)!);
  return (
    <figure className="map">
      <svg viewBox={`0 0 ${W} ${H}`} className="track" role="img" aria-label={`track of ${points.length} points`} data-testid="telemetry-track">
        <g data-testid="map-tiles">
          {tilesFor(view, W, H).map((t) => (
            <image key={`${t.left},${t.top}`} href={tileUrl(tiles.url, t)} x={t.left} y={t.top} width={256} height={256} />
          ))}
        </g>
        <polyline
          points={points
            .map(at)
            .map((p) => `${p.x},${p.y}`)
            .join(' ')}
          className="path"
        />
        <circle cx={first.x} cy={first.y} r={5} className="start">
          <title>start {points[0]!.ts}</title>
        </circle>
        <circle cx={last.x} cy={last.y} r={5} className="end">
          <title>end {points.at(-1)!.ts}</title>
        </circle>
      </svg>
      <figcaption className="attribution">{tiles.attribution}</figcaption>
    </figure>
  );
}
