// An env_file's content, as Compose reads it: `KEY=VALUE` lines; blank lines and `#` comments
// skipped; an optional `export `; values in '…' are literal, in "…" take \n, \t, \" and \\ escapes;
// an unquoted value ends at ` #`. Nothing is interpolated.

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const MAX_LINES = 10_000;

export function parseEnvFile(content: string, fail: (line: number, reason: string) => never): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = content.split(/\r?\n/);
  if (lines.length > MAX_LINES) fail(MAX_LINES + 1, `more than ${MAX_LINES} lines`);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const body = line.startsWith('export ') ? line.slice(7).trimStart() : line;
    const eq = body.indexOf('=');
    if (eq < 0) fail(i + 1, `expected KEY=VALUE (a bare name would be taken from a shell the server does not have)`);
    const name = body.slice(0, eq).trim();
    if (!NAME_RE.test(name)) fail(i + 1, `"${name}" is not a variable name`);
    out[name] = value(body.slice(eq + 1).trimStart(), (reason) => fail(i + 1, reason));
  });
  return out;
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', '"': '"', '\\': '\\' };

function value(v: string, fail: (reason: string) => never): string {
  const quote = v[0];
  if (quote === "'" || quote === '"') {
    const end = v.lastIndexOf(quote);
    if (end === 0) fail(`unterminated ${quote} quote`);
    const rest = v.slice(end + 1).trim();
    if (rest && !rest.startsWith('#')) fail(`text after the closing quote: ${JSON.stringify(rest)}`);
    const inner = v.slice(1, end);
    return quote === "'" ? inner : inner.replace(/\\(.)/g, (m, c: string) => ESCAPES[c] ?? m);
  }
  const comment = v.search(/\s#/);
  return (comment < 0 ? v : v.slice(0, comment)).trimEnd();
}
