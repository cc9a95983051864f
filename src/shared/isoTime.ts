// ISO-8601 UTC timestamps without Date#toISOString: on the agent its first call pages in ICU's
// time-zone data (~0.7 MB of RSS, BENCHMARKS.md §3) although the result is UTC.
const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** `2026-12-01T16:04:23.500Z`, the same string as `new Date(ms).toISOString()` for years 0–9999. */
export function isoTime(ms: number = Date.now()): string {
  const d = new Date(ms);
  const date = `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
  return `${date}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}Z`;
}
