// The simulated devices' HTTP client: raw HTTP/1.1 requests over keep-alive sockets, one request at a
// time on a connection.
import net from 'node:net';

interface Resp {
  status: number;
  etag: string | undefined;
  close: boolean;
  body: Buffer;
}

const EMPTY = Buffer.alloc(0);
const HEAD_END = Buffer.from('\r\n\r\n');
const unquote = (tag: string) => tag.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');

/** One keep-alive connection, one request at a time; reconnects when the server closed it. */
export class Conn {
  private sock: net.Socket | undefined;
  private buf: Buffer = EMPTY;
  private pending: { resolve: (r: Resp) => void; reject: (e: Error) => void; deadline: number } | undefined;
  static readonly all = new Set<Conn>();

  constructor(
    private readonly port: number,
    private readonly localAddress: string,
  ) {
    Conn.all.add(this);
  }

  get open(): boolean {
    return this.sock !== undefined;
  }

  connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: this.port, localAddress: this.localAddress, noDelay: true });
      const timer = setTimeout(() => s.destroy(new Error('connect timed out')), 20_000);
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        this.sock = s;
        this.buf = EMPTY;
        s.on('data', (c: Buffer) => this.onData(c));
        s.on('error', () => {}); // 'close' follows
        s.on('close', () => {
          if (this.sock === s) this.sock = undefined;
          this.fail(new Error('connection closed'));
        });
        resolve();
      });
    });
  }

  async request(raw: Buffer, timeoutMs: number): Promise<Resp> {
    if (this.pending) throw new Error('a request is already pending on this connection');
    if (!this.sock) await this.connect();
    return new Promise<Resp>((resolve, reject) => {
      this.pending = { resolve, reject, deadline: Date.now() + timeoutMs };
      this.sock!.write(raw);
    });
  }

  /** the timeout sweeper's check */
  expired(now: number): boolean {
    return this.pending !== undefined && now > this.pending.deadline;
  }

  destroy(reason = 'closed by the bench'): void {
    this.sock?.destroy();
    this.sock = undefined;
    this.fail(new Error(reason));
  }

  forget(): void {
    this.destroy();
    Conn.all.delete(this);
  }

  private fail(err: Error): void {
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const r = this.parse();
      if (!r) return;
      const p = this.pending;
      this.pending = undefined;
      if (r.close) {
        this.sock?.destroy();
        this.sock = undefined;
      }
      p?.resolve(r);
    }
  }

  /** One whole response off the buffer, or undefined while it is incomplete. */
  private parse(): Resp | undefined {
    const buf = this.buf;
    const end = buf.indexOf(HEAD_END);
    if (end < 0) return undefined;
    const lines = buf.toString('latin1', 0, end).split('\r\n');
    const status = Number(lines[0]!.slice(9, 12));
    let length = 0;
    let chunked = false;
    let etag: string | undefined;
    let close = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      const value = line.slice(colon + 1).trim();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding') chunked = /chunked/i.test(value);
      else if (name === 'etag') etag = unquote(value);
      else if (name === 'connection') close = /close/i.test(value);
    }
    if (status === 304 || status === 204 || status < 200) {
      length = 0;
      chunked = false;
    }
    let pos = end + 4;
    let body: Buffer;
    if (chunked) {
      const parts: Buffer[] = [];
      for (;;) {
        const eol = buf.indexOf('\r\n', pos);
        if (eol < 0) return undefined;
        const size = parseInt(buf.toString('latin1', pos, eol), 16);
        if (size === 0) {
          if (buf.length < eol + 4) return undefined;
          pos = eol + 4;
          break;
        }
        if (buf.length < eol + 2 + size + 2) return undefined;
        parts.push(buf.subarray(eol + 2, eol + 2 + size));
        pos = eol + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else {
      if (buf.length < pos + length) return undefined;
      body = buf.subarray(pos, pos + length);
      pos += length;
    }
    this.buf = pos >= buf.length ? EMPTY : buf.subarray(pos);
    return { status, etag, close, body };
  }
}

export function getRequest(path: string, headers: Record<string, string>): Buffer {
  let head = `GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return Buffer.from(`${head}\r\n`, 'latin1');
}
export function postRequest(path: string, headers: Record<string, string>, body: unknown): Buffer {
  const payload = Buffer.from(JSON.stringify(body));
  let head = `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${payload.length}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), payload]);
}
