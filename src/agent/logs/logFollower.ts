// Follows what the device's services print (stdout and stderr of every container the agent owns,
// including ones started later) and the agent's own system messages, as one stream of lines.
// Used by `GET /v2/local/logs` (the balena CLI's `balena device logs`).
import { PassThrough, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import { LABEL, ownedBy, SUPERVISED_FILTER } from '../engine/labels.js';
import type { EventLog } from '../eventLog.js';

export interface LogLine {
  message: string;
  /** ms since epoch */
  timestamp: number;
  isSystem: boolean;
  isStdErr?: boolean;
  serviceName?: string;
  appId?: number;
}

/** Longer lines are cut: a service printing without newlines must not grow a buffer for ever. */
const MAX_LINE = 64 * 1024;

export function followLogs(docker: Docker, scope: string | undefined, log: EventLog, onLine: (line: LogLine) => void): () => void {
  const streams = new Map<string, Readable>();
  let stopped = false;
  const unsubscribe = log.subscribe((level, message) => onLine({ message, timestamp: Date.now(), isSystem: true, ...(level === 'error' ? { isStdErr: true } : {}) }));

  const follow = async (id: string, labels: Record<string, string>) => {
    if (stopped || streams.has(id) || !ownedBy(labels, scope) || !labels[LABEL.serviceName]) return;
    const meta = { serviceName: labels[LABEL.serviceName]!, appId: Number(labels[LABEL.appId]) };
    const raw = (await docker.getContainer(id).logs({ follow: true, stdout: true, stderr: true, timestamps: true, since: Math.floor(Date.now() / 1000) })) as unknown as Readable;
    if (stopped) return raw.destroy();
    streams.set(id, raw);
    const out = new PassThrough();
    const err = new PassThrough();
    docker.modem.demuxStream(raw, out, err);
    splitLines(out, (l) => onLine({ ...parseTimestamped(l), isSystem: false, ...meta }));
    splitLines(err, (l) => onLine({ ...parseTimestamped(l), isSystem: false, isStdErr: true, ...meta }));
    raw.on('close', () => streams.delete(id));
    raw.on('end', () => streams.delete(id));
    raw.on('error', () => streams.delete(id));
  };

  let events: Readable | undefined;
  const start = async () => {
    events = (await docker.getEvents({ filters: { type: ['container'], event: ['start'], ...SUPERVISED_FILTER } })) as unknown as Readable;
    if (stopped) return events.destroy();
    splitLines(events, (l) => {
      const e = JSON.parse(l) as { id: string; Actor?: { Attributes?: Record<string, string> } };
      void follow(e.id, e.Actor?.Attributes ?? {}).catch(() => undefined);
    });
    const running = await docker.listContainers({ filters: { status: ['running'], ...SUPERVISED_FILTER } });
    for (const c of running) await follow(c.Id, c.Labels).catch(() => undefined);
  };
  start().catch((e: Error) => onLine({ message: `Could not follow the services' logs: ${e.message}`, timestamp: Date.now(), isSystem: true, isStdErr: true }));

  return () => {
    stopped = true;
    unsubscribe();
    events?.destroy();
    for (const s of streams.values()) s.destroy();
    streams.clear();
  };
}

function splitLines(stream: Readable, onLine: (line: string) => void): void {
  let rest = '';
  stream.on('data', (chunk: Buffer) => {
    rest += chunk.toString();
    let i: number;
    while ((i = rest.indexOf('\n')) >= 0) {
      const line = rest.slice(0, i);
      rest = rest.slice(i + 1);
      if (line) onLine(line);
    }
    if (rest.length > MAX_LINE) {
      onLine(rest.slice(0, MAX_LINE));
      rest = '';
    }
  });
}

/** The engine prefixes each line with an RFC 3339 timestamp when asked to. */
function parseTimestamped(line: string): { message: string; timestamp: number } {
  const space = line.indexOf(' ');
  const ts = Date.parse(line.slice(0, space));
  return Number.isNaN(ts) ? { message: line, timestamp: Date.now() } : { message: line.slice(space + 1), timestamp: ts };
}
