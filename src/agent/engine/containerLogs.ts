// What a container printed, as the engine kept it (stdout and stderr in order), read as a stream
// and handed over chunk by chunk: dockerode buffers a whole logs answer unless it follows, and a
// container's output is as long as the container makes it.
import { finished, Writable, type Readable } from 'node:stream';
import type Docker from 'dockerode';
import { withDeadline } from './deadline.js';

export interface LogsQuery {
  /** the newest this many lines, or `all` */
  tail: number | string;
  /** UNIX time (s) */
  since?: number;
  timestamps?: boolean;
  /** the container has a TTY: its output comes as it is, not in stdout/stderr frames */
  tty?: boolean;
}

export async function readLogs(docker: Docker, containerId: string, query: LogsQuery, onChunk: (chunk: Buffer) => void, timeoutMs?: number): Promise<void> {
  await withDeadline(async (d) => {
    const raw = await new Promise<Readable>((resolve, reject) =>
      docker.modem.dial(
        {
          path: `/containers/${containerId}/logs?`,
          method: 'GET',
          isStream: true,
          abortSignal: d.abortSignal,
          statusCodes: { 200: true, 404: 'no such container', 500: 'server error' },
          options: { stdout: true, stderr: true, timestamps: query.timestamps === true, tail: query.tail, since: query.since ?? 0 },
        },
        (err, stream) => (err ? reject(err) : resolve(stream as Readable)),
      ),
    );
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        onChunk(chunk);
        done();
      },
    });
    if (query.tty) raw.pipe(sink);
    else docker.modem.demuxStream(raw, sink, sink);
    await new Promise<void>((resolve, reject) => finished(raw, (err) => (err ? reject(err) : resolve())));
  }, timeoutMs);
}
