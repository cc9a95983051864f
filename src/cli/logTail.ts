// `bosun logs -f`: the server's live tail (Server-Sent Events), resumed from the last line seen
// (Last-Event-ID) when the connection drops, until Ctrl-C.
import type { Api } from './api.js';
import { CliError, EXIT } from './errors.js';

export interface LogLine {
  id: number;
  ts: string;
  stream: 'stdout' | 'stderr' | 'system';
  service: string | null;
  message: string;
}

export function printLine(l: LogLine, json: boolean): void {
  process.stdout.write(json ? `${JSON.stringify(l)}\n` : `${l.ts}  ${(l.service ?? 'agent').padEnd(12)}  ${l.message}\n`);
}

/** The events of an SSE body: each `data:` payload, with the event's id. */
async function* events(body: ReadableStream<Uint8Array>): AsyncGenerator<{ id?: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let id: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('id:')) id = line.slice(3).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length) yield { ...(id !== undefined ? { id } : {}), data: data.join('\n') };
    }
  }
}

export async function followLogs(api: Api, deviceId: string, query: { service?: string; since?: string; limit: number }, json: boolean): Promise<void> {
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  let lastId: string | undefined;
  let retry = 1000;
  while (!stop.signal.aborted) {
    try {
      const res = await api.open(
        `/dongle/devices/${encodeURIComponent(deviceId)}/logs/tail/`,
        lastId === undefined ? query : { service: query.service },
        lastId !== undefined ? { 'last-event-id': lastId } : {},
        stop.signal,
      );
      retry = 1000;
      for await (const ev of events(res.body!)) {
        let line: LogLine;
        try {
          line = JSON.parse(ev.data) as LogLine;
        } catch {
          continue; // not a log line (a comment or keep-alive)
        }
        printLine(line, json);
        if (ev.id !== undefined) lastId = ev.id;
      }
    } catch (err) {
      if (stop.signal.aborted) break;
      // a refused token or a device gone is final; a dropped connection is retried
      if (err instanceof CliError && err.exitCode !== EXIT.UNREACHABLE) throw err;
      process.stderr.write(`log tail interrupted (${(err as Error).message}); reconnecting in ${retry / 1000} s\n`);
    }
    if (stop.signal.aborted) break;
    await new Promise((r) => setTimeout(r, retry));
    retry = Math.min(retry * 2, 30_000);
  }
}
