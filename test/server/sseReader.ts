// A Server-Sent Events stream read as an EventSource would: each event's fields (comments skipped),
// turned into the test's own shape by `toEvent`, collected as they come until the stream ends or
// the test closes it.
import type { TestContext } from 'node:test';

export type SseFields = Record<string, string>;

export async function readSse<E>(t: TestContext, url: string, headers: Record<string, string>, toEvent: (fields: SseFields) => E | undefined) {
  const stop = new AbortController();
  const res = await fetch(url, { headers, signal: stop.signal });
  const events: E[] = [];
  let ended = false;
  const reading = (async () => {
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const fields: SseFields = Object.fromEntries(
            buf
              .slice(0, i)
              .split('\n')
              .filter((l) => !l.startsWith(':'))
              .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
          );
          buf = buf.slice(i + 2);
          const event = toEvent(fields);
          if (event !== undefined) events.push(event);
        }
      }
    } catch {
      // aborted
    }
    ended = true;
  })();
  const close = async () => {
    stop.abort();
    await reading;
  };
  t.after(close);
  return { status: res.status, type: res.headers.get('content-type'), events, ended: () => ended, close };
}
