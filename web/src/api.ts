// The operator API as the dashboard calls it: the token from session storage on every call, errors
// with the API's `detail` and `field` (a JSON pointer such as /containers/0/image).
import { readEvents, type SseEvent } from './sse';

const TOKEN_KEY = 'bosun.token';

export const session = {
  token: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (token: string) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly field?: string,
    readonly body?: unknown,
  ) {
    super(message);
  }
}

const authHeaders = (token = session.token()): Record<string, string> => (token ? { authorization: `APIToken ${token}` } : {});

export async function api<T>(method: string, path: string, body?: unknown, token?: string): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: { ...authHeaders(token), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // text
  }
  if (!res.ok) {
    const p = (parsed ?? {}) as { detail?: string; field?: string; message?: string; Error?: string };
    if (res.status === 401 && !token) window.dispatchEvent(new Event('bosun:unauthorized'));
    throw new ApiError(res.status, p.detail ?? p.message ?? p.Error ?? (typeof parsed === 'string' && parsed ? parsed : res.statusText), p.field, parsed);
  }
  return parsed as T;
}

/** An event stream of the API with this session's token (sse.ts). */
export function events(path: string, onEvent: (e: SseEvent) => void, signal: AbortSignal, onStatus?: (connected: boolean, error?: string) => void) {
  return readEvents(path, authHeaders(), onEvent, signal, onStatus);
}

/** A call to the device's own API through the control plane's supervisor proxy. */
export async function supervisor(uuid: string, path: string, method = 'POST', data?: unknown): Promise<unknown> {
  return api('POST', `/supervisor/${path}`, { uuid, method, ...(data !== undefined ? { data } : {}) });
}
