// Server-Sent Events read with fetch, so that the API token goes in the Authorization header (an
// EventSource cannot send headers, and a token in a URL ends up in logs and history).

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** Splits a text/event-stream into events; feed it chunks as they come. */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined;

  push(chunk: string): SseEvent[] {
    this.buffer += chunk;
    const out: SseEvent[] = [];
    let nl: number;
    while ((nl = this.buffer.search(/\r\n|\n|\r/)) >= 0) {
      // a CR that ends the chunk may be the first half of a CRLF: wait for the next chunk
      if (nl === this.buffer.length - 1 && this.buffer.endsWith('\r')) break;
      const line = this.buffer.slice(0, nl);
      this.buffer = this.buffer.slice(nl + (this.buffer.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (this.data.length) out.push({ event: this.event || 'message', data: this.data.join('\n'), ...(this.id !== undefined ? { id: this.id } : {}) });
        this.data = [];
        this.event = '';
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') this.data.push(value);
      else if (field === 'event') this.event = value;
      else if (field === 'id') this.id = value;
    }
    return out;
  }
}

/**
 * Reads the stream at `url` until `signal` aborts; reconnects after a drop (with the last event id),
 * waiting a little longer each time. `onStatus` says whether it is connected.
 */
export async function readEvents(
  url: string,
  headers: Record<string, string>,
  onEvent: (e: SseEvent) => void,
  signal: AbortSignal,
  onStatus: (connected: boolean, error?: string) => void = () => {},
): Promise<void> {
  let lastId: string | undefined;
  let backoff = 500;
  while (!signal.aborted) {
    try {
      const res = await fetch(url, { headers: { ...headers, accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) }, signal });
      if (!res.ok || !res.body) {
        const text = await res.text();
        onStatus(false, `${res.status}: ${detailOf(text)}`);
        if (res.status === 401 || res.status === 404) return;
      } else {
        onStatus(true);
        backoff = 500;
        const parser = new SseParser();
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const e of parser.push(value)) {
            if (e.id !== undefined) lastId = e.id;
            onEvent(e);
          }
        }
        onStatus(false);
      }
    } catch (err) {
      if (signal.aborted) return;
      onStatus(false, (err as Error).message);
    }
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(backoff * 2, 10_000);
  }
}

function detailOf(text: string): string {
  try {
    return (JSON.parse(text) as { detail?: string }).detail ?? text;
  } catch {
    return text;
  }
}
