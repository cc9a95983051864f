// A one-command QMP client (qemu's JSON monitor on the instance's unix socket): greeting,
// qmp_capabilities, the command, its answer. Bounded in time and in what it buffers.
import net from 'node:net';

const MAX_BUFFER = 256 * 1024;

export function qmpCommand(socket: string, execute: string, timeoutMs = 5000, args?: object): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(socket);
    let buffer = '';
    let sent = 0;
    const fail = (err: Error) => {
      conn.destroy();
      reject(err);
    };
    conn.setTimeout(timeoutMs, () => fail(new Error(`QMP ${execute}: no answer in ${timeoutMs} ms`)));
    conn.on('error', fail);
    conn.on('close', () => reject(new Error(`QMP ${execute}: connection closed`)));
    conn.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      if (buffer.length > MAX_BUFFER) return fail(new Error('QMP: answer too long'));
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const msg = JSON.parse(buffer.slice(0, nl)) as { QMP?: unknown; return?: unknown; error?: { desc?: string }; event?: string };
        buffer = buffer.slice(nl + 1);
        if (msg.event) continue;
        if (msg.error) return fail(new Error(`QMP ${execute}: ${msg.error.desc ?? 'error'}`));
        if (msg.QMP) {
          conn.write('{"execute":"qmp_capabilities"}\n');
        } else if (sent++ === 0) {
          conn.write(`${JSON.stringify(args ? { execute, arguments: args } : { execute })}\n`);
        } else {
          conn.end();
          return resolve(msg.return);
        }
      }
    });
  });
}
