// Request bodies of NDJSON (one JSON value per line), optionally gzip-compressed
// (`Content-Encoding: gzip`), for the routes that take uploads from devices. The route's bodyLimit
// bounds both the bytes received and the bytes they inflate to (fastify checks both), so a small
// compressed body cannot become a huge one. The parsed body is the array of the lines' values, which
// the route's schema then checks (a field is named `/<line index>/<field>`).
import { createGunzip } from 'node:zlib';
import type { preParsingAsyncHookHandler } from 'fastify';
import { BosunError, ValidationError } from '../../shared/errors.js';
import type { ServerApp } from '../app.js';

const NDJSON = 'application/x-ndjson';

/** A Content-Encoding other than gzip (HTTP 415). */
class UnsupportedEncodingError extends BosunError {
  override name = 'UnsupportedEncodingError';
  readonly statusCode = 415;
  constructor(encoding: string) {
    super(`Content-Encoding ${encoding} is not supported: send gzip, or the body as it is`);
  }
}

/** Adds the NDJSON parser to an app (within the plugin that calls it). */
export function acceptNdjson(app: ServerApp, what: string): void {
  app.addContentTypeParser(NDJSON, { parseAs: 'string' }, (_req, body, done) => {
    const values: unknown[] = [];
    for (const line of String(body).split('\n')) {
      if (!line.trim()) continue;
      try {
        values.push(JSON.parse(line));
      } catch {
        return done(new ValidationError(`/${values.length}`, 'not a JSON line', what));
      }
    }
    done(null, values);
  });
}

/** A route's preParsing hook: inflates a gzip body as it arrives. */
export const gunzipBody: preParsingAsyncHookHandler = async (req, _reply, payload) => {
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding === 'identity') return payload;
  if (encoding !== 'gzip') throw new UnsupportedEncodingError(encoding);
  const inflated = Object.assign(createGunzip(), { receivedEncodedLength: 0 });
  payload.on('data', (chunk: Buffer) => (inflated.receivedEncodedLength += chunk.length));
  payload.on('error', (err) => inflated.destroy(err));
  inflated.once('error', (err: Error & { statusCode?: number }) => {
    if (err.statusCode) return;
    err.message = `the body is not gzip data (${err.message})`;
    err.statusCode = 400;
  });
  return payload.pipe(inflated);
};
