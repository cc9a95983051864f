// A small JSON client over node:http(s) for the device link. Not `fetch`: the agent runs with
// --lite-mode, which turns off WebAssembly, and Node's fetch (undici) needs it.
import http from 'node:http';
import type { RequestOptions } from 'node:https';

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** Answers larger than this are refused: a target state is kilobytes, not megabytes. */
const MAX_BODY = 8 * 1024 * 1024;

export async function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: unknown; timeoutMs: number; signal?: AbortSignal },
): Promise<HttpAnswer> {
  const u = new URL(url);
  // https (and with it tls) is loaded only for https endpoints
  const mod: { request: typeof http.request } = u.protocol === 'https:' ? await import('node:https') : http;
  // JSON, unless it is a Buffer: sent as it is, with the caller's content-type (gzip NDJSON logs)
  const payload = opts.body === undefined ? undefined : Buffer.isBuffer(opts.body) ? opts.body : JSON.stringify(opts.body);
  const options: RequestOptions = {
    method: opts.method ?? 'GET',
    headers: {
      accept: 'application/json',
      ...(payload ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}),
      ...opts.headers,
    },
    timeout: opts.timeoutMs,
    ...(opts.signal ? { signal: opts.signal } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = mod.request(u, options, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) req.destroy(new Error(`answer from ${u.host} larger than ${MAX_BODY} bytes`));
        else chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${u.host} within ${Math.round(opts.timeoutMs / 1000)} s`)));
    req.on('error', reject);
    req.end(payload);
  });
}
