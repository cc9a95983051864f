// The control plane's public HTTP API (the one /openapi.json describes) as the CLI calls it: each
// failure becomes a CliError whose message says what to do next, and whose exit code says what
// kind of failure it was. The token goes only into the Authorization header; it is never printed.
import { CliError, EXIT } from './errors.js';
import type { Login } from './config.js';

type Query = Record<string, string | number | boolean | undefined>;

export class Api {
  constructor(readonly login: Login) {}

  url(path: string, query: Query = {}): string {
    const u = new URL(path, `${this.login.server}/`);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, undefined, query);
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, body);
  }

  async request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
    const res = await this.fetch(this.url(path, query), {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw this.refusal(res.status, text, `${method} ${path}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** A response whose body the caller reads (a live tail): errors as request's. */
  async open(path: string, query: Query, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
    const res = await this.fetch(this.url(path, query), { headers: { accept: 'text/event-stream', ...headers }, ...(signal ? { signal } : {}) });
    if (!res.ok) throw this.refusal(res.status, await res.text(), `GET ${path}`);
    return res;
  }

  private async fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await fetch(url, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `APIToken ${this.login.token}` } });
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new CliError(
        `cannot reach the Bosun server at ${this.login.server} (${cause?.code ?? cause?.message ?? (err as Error).message}): is it running? ` +
          'Check the URL (bosun login --server <url>, or BOSUN_SERVER).',
        EXIT.UNREACHABLE,
      );
    }
  }

  private refusal(status: number, text: string, what: string): CliError {
    let detail = text.slice(0, 2000);
    try {
      const body = JSON.parse(text) as { detail?: string; field?: string };
      if (typeof body.detail === 'string') detail = body.detail;
    } catch {
      // not JSON: the text as it is
    }
    const server = this.login.server;
    if (status === 401 || status === 403) {
      return new CliError(`the server at ${server} refused the API token (${status}): run "bosun login --server ${server}" with a valid token`, EXIT.AUTH);
    }
    if (status === 404) return new CliError(`${detail} (${what}: 404)`, EXIT.NOT_FOUND);
    if (status >= 400 && status < 500) return new CliError(`refused (${status}): ${detail}`, EXIT.REFUSED);
    return new CliError(`the server at ${server} failed (${status}) on ${what}: ${detail}`, EXIT.FAILURE);
  }
}
