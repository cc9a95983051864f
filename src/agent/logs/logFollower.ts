// Follows what the device's services print (stdout and stderr of every container the agent owns,
// including ones started later) and the agent's own system messages, as one stream of lines.
// Used by `GET /v2/local/logs` (the balena CLI's `balena device logs`), which follows from now, and
// by the log shipper (cloud mode), which resumes each container where it stopped.
import { PassThrough, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import { LABEL, ownedBy, SUPERVISED_FILTER } from '../engine/labels.js';
import type { EventLog } from '../eventLog.js';
import { isoTime } from '../../shared/isoTime.js';

export interface LogLine {
  message: string;
  /** ms since epoch */
  timestamp: number;
  isSystem: boolean;
  isStdErr?: boolean;
  serviceName?: string;
  appId?: number;
}

/** Where a service's line came from (not part of the balena line: followers that resume need it). */
export interface LineOrigin {
  containerId: string;
  releaseId?: number;
  /** the engine's timestamp, RFC 3339 UTC with exactly nine fraction digits (so strings sort as times) */
  time?: string;
}

/** Per stream, the `engineTime` of the last line taken from a container. */
export interface StreamCursors {
  stdout?: string;
  stderr?: string;
}

export interface FollowOptions {
  /**
   * Where a container's log resumes: each stream after its cursor (a line stamped at or before it
   * was taken). Default: from now.
   */
  since?(containerId: string): StreamCursors | undefined;
}

/** Longer lines are cut: a service printing without newlines must not grow a buffer for ever. */
const MAX_LINE = 64 * 1024;
/** Following the engine's events again after it went away: from 1 s, doubling, at most this. */
const MAX_RETRY_MS = 30_000;
/**
 * The engine stamps stdout and stderr apart and writes them to one log, so a line of one stream can
 * come after a later line of the other, by far less than this. A resumed log reads this much before
 * the later cursor, and no more: a stream quiet for months must not make every restart read months
 * of the other again.
 */
const STREAMS_APART_S = 5;

export function followLogs(
  docker: Docker,
  scope: string | undefined,
  log: EventLog,
  onLine: (line: LogLine, origin?: LineOrigin) => void,
  opts: FollowOptions = {},
): () => void {
  const streams = new Map<string, Readable>();
  let stopped = false;
  const unsubscribe = log.subscribe((level, message) =>
    onLine({ message, timestamp: Date.now(), isSystem: true, ...(level === 'error' ? { isStdErr: true } : {}) }),
  );

  const follow = async (id: string, labels: Record<string, string>) => {
    if (stopped || streams.has(id) || !ownedBy(labels, scope) || !labels[LABEL.serviceName]) return;
    const meta = { serviceName: labels[LABEL.serviceName]!, appId: Number(labels[LABEL.appId]) };
    const releaseId = Number(labels[LABEL.releaseId]) || undefined;
    const from = opts.since?.(id);
    const resume = from && resumeAt(from);
    const since = resume ? unixSince(resume) : Math.floor(Date.now() / 1000);
    const raw = (await docker.getContainer(id).logs({ follow: true, stdout: true, stderr: true, timestamps: true, since })) as unknown as Readable;
    if (stopped || streams.has(id)) return raw.destroy();
    streams.set(id, raw);
    const out = new PassThrough();
    const err = new PassThrough();
    docker.modem.demuxStream(raw, out, err);
    const emit = (l: string, stderr: boolean) => {
      const { message, time } = parseTimestamped(l);
      // a resumed log sends again what came up to each stream's cursor: that was taken before
      const cursor = from?.[stderr ? 'stderr' : 'stdout'];
      if (cursor && time && time <= cursor) return;
      const line: LogLine = { message, timestamp: time ? Date.parse(time) : Date.now(), isSystem: false, ...(stderr ? { isStdErr: true } : {}), ...meta };
      onLine(line, { containerId: id, ...(releaseId ? { releaseId } : {}), ...(time ? { time } : {}) });
    };
    splitLines(out, (l) => emit(l, false));
    splitLines(err, (l) => emit(l, true));
    const gone = () => {
      if (streams.get(id) !== raw) return;
      streams.delete(id);
      // a restart's start event can come before its old stream ended: follow on if it runs again
      if (!stopped) setTimeout(() => void refollow(id, labels), 1000).unref();
    };
    raw.on('close', gone);
    raw.on('end', gone);
    raw.on('error', gone);
  };

  const refollow = async (id: string, labels: Record<string, string>) => {
    if (stopped || streams.has(id)) return;
    if (
      (
        await docker
          .getContainer(id)
          .inspect()
          .catch(() => undefined)
      )?.State.Running
    )
      await follow(id, labels).catch(() => undefined);
  };

  // The engine's start events and its running containers; again when the event stream ends (the
  // engine restarted): a container followed already is not followed twice.
  let events: Readable | undefined;
  let failures = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  const start = async () => {
    events = (await docker.getEvents({ filters: { type: ['container'], event: ['start'], ...SUPERVISED_FILTER } })) as unknown as Readable;
    if (stopped) return events.destroy();
    const ended = events;
    ended.on('error', () => undefined);
    ended.on('close', () => {
      if (events === ended) retry(new Error('the engine closed its event stream'));
    });
    splitLines(ended, (l) => {
      const e = JSON.parse(l) as { id: string; Actor?: { Attributes?: Record<string, string> } };
      void follow(e.id, e.Actor?.Attributes ?? {}).catch(() => undefined);
    });
    const running = await docker.listContainers({ filters: { status: ['running'], ...SUPERVISED_FILTER } });
    for (const c of running) await follow(c.Id, c.Labels).catch(() => undefined);
    failures = 0;
  };
  const retry = (e: Error) => {
    const failed = events;
    events = undefined;
    failed?.destroy();
    if (stopped || retryTimer) return;
    // said once per outage, not at every attempt
    if (failures++ === 0)
      onLine({ message: `Could not follow the services' logs: ${e.message}; retrying`, timestamp: Date.now(), isSystem: true, isStdErr: true });
    retryTimer = setTimeout(
      () => {
        retryTimer = undefined;
        start().catch(retry);
      },
      Math.min(MAX_RETRY_MS, 1000 * 2 ** (failures - 1)),
    );
    retryTimer.unref();
  };
  start().catch(retry);

  return () => {
    stopped = true;
    clearTimeout(retryTimer);
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
function parseTimestamped(line: string): { message: string; time?: string } {
  const space = line.indexOf(' ');
  const time = engineTime(line.slice(0, Math.max(0, space)));
  return time ? { message: line.slice(space + 1), time } : { message: line };
}

/**
 * An RFC 3339 UTC timestamp with exactly nine fraction digits (the engine trims trailing zeros in
 * some versions), so that two of them compare as strings as they do as times; undefined if `text`
 * is none.
 */
export function engineTime(text: string): string | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(text);
  if (m) return `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}Z`;
  const ms = Date.parse(text);
  return /^\d{4}-/.test(text) && !Number.isNaN(ms) ? isoTime(ms).replace('Z', '000000Z') : undefined;
}

/** Where a resumed log starts: at the earlier cursor, but no further back than STREAMS_APART_S before the later. */
export function resumeAt({ stdout, stderr }: StreamCursors): string | undefined {
  const [early, late] = [stdout, stderr].filter((c): c is string => !!c).sort();
  if (!late) return early;
  const floor = `${isoTime(Date.parse(`${late.slice(0, 19)}Z`) - STREAMS_APART_S * 1000).slice(0, 19)}${late.slice(19)}`;
  return early! < floor ? floor : early;
}

/** The engine's `since` for an engineTime: unix seconds with the nanoseconds as fraction. */
const unixSince = (time: string) => `${Math.floor(Date.parse(`${time.slice(0, 19)}Z`) / 1000)}.${time.slice(20, 29)}`;
