// Multipart uploads (UniK's `tarfile` part and form fields), parsed by busboy and streamed to a file
// under the API's folder, never held in memory, within a size limit; then extracted with
// safeExtract. The upload file is gone once extracted; a refused upload leaves nothing behind.
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { IncomingMessage } from 'node:http';
import busboy from 'busboy';
import fsp, { fd } from '../../shared/fsAsync.js';
import { randomHex } from '../randomHex.js';
import { UnikError } from './provider.js';
import { safeExtract, type ExtractLimits } from './safeExtract.js';

export interface Upload {
  fields: Record<string, string>;
  /** the extracted `tarfile`, when one came */
  dir?: string;
  /** the `tarfile` part as it came, unread, when `raw` said so */
  file?: string;
}

const MAX_FIELDS = 32;
const MAX_FIELD_BYTES = 64 * 1024;

/**
 * Reads a multipart body: its fields, and its `tarfile` extracted into a new folder under `workDir`,
 * or, when `raw(fields)` says so (UniK's raw volume data), kept as the file it is.
 */
export async function readUpload(
  req: IncomingMessage,
  workDir: string,
  limitBytes: number,
  extractLimits: ExtractLimits,
  raw: (fields: Record<string, string>) => boolean = () => false,
): Promise<Upload> {
  await fsp.mkdir(workDir, { recursive: true, mode: 0o700 });
  const id = await randomHex(12);
  const tarPath = path.join(workDir, `upload-${id}.tar`);
  let wroteTar = false;
  try {
    const fields = await parse(req, tarPath, limitBytes, () => (wroteTar = true));
    if (!wroteTar) return { fields };
    if (raw(fields)) {
      const file = path.join(workDir, `raw-${id}`);
      await fsp.rename(tarPath, file);
      return { fields, file };
    }
    const dir = path.join(workDir, `src-${id}`);
    await safeExtract(tarPath, dir, extractLimits);
    return { fields, dir };
  } finally {
    await fsp.rm(tarPath, { force: true });
  }
}

function parse(req: IncomingMessage, tarPath: string, limitBytes: number, onTar: () => void): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { files: 1, fileSize: limitBytes, fields: MAX_FIELDS, fieldSize: MAX_FIELD_BYTES } });
    } catch (err) {
      reject(new UnikError('bad-request', `not a multipart body: ${(err as Error).message}`));
      return;
    }
    const fields: Record<string, string> = {};
    let saving: Promise<void> = Promise.resolve();
    let failed: UnikError | undefined;
    const fail = (err: UnikError) => {
      failed ??= err;
      req.unpipe(bb);
      req.resume();
      reject(failed);
    };
    bb.on('field', (name, value, info) => {
      if (info.valueTruncated) fail(new UnikError('bad-request', `form field ${name} is longer than ${MAX_FIELD_BYTES} bytes`));
      else fields[name] = value;
    });
    bb.on('file', (name, stream) => {
      if (name !== 'tarfile') {
        stream.resume();
        fail(new UnikError('bad-request', `unexpected file part ${JSON.stringify(name)}: the archive goes in the part named tarfile`));
        return;
      }
      onTar();
      stream.on('limit', () => fail(new UnikError('bad-request', `the upload exceeds ${limitBytes} bytes`)));
      saving = save(stream, tarPath).catch((err: NodeJS.ErrnoException) => {
        fail(
          err.code === 'ENOSPC' || err.code === 'EDQUOT'
            ? new UnikError('insufficient-storage', 'no space left on the device for the upload')
            : new UnikError('failed', `could not store the upload: ${err.message}`),
        );
      });
    });
    bb.on('filesLimit', () => fail(new UnikError('bad-request', 'only one file part (tarfile) is accepted')));
    bb.on('fieldsLimit', () => fail(new UnikError('bad-request', `more than ${MAX_FIELDS} form fields`)));
    bb.on('error', (err: Error) => fail(new UnikError('bad-request', `malformed multipart body: ${err.message}`)));
    bb.on('close', () => {
      void saving.then(() => {
        if (!failed) resolve(fields);
      });
    });
    req.on('aborted', () => fail(new UnikError('bad-request', 'the upload was interrupted')));
    req.pipe(bb);
  });
}

async function save(stream: NodeJS.ReadableStream, file: string): Promise<void> {
  const out = await fd.open(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  await pipeline(stream, fs.createWriteStream('', { fd: out }));
}
