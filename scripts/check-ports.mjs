// `npm start`'s check before it starts anything: can each port it needs be bound? A busy one is named
// with the variable that moves it, instead of an EADDRINUSE from a process after "up" was printed.
// Usage: node scripts/check-ports.mjs <address>:<port>=<what, and how to change it> …  (exit 1 if any is busy)
import net from 'node:net';

const busy = [];
for (const arg of process.argv.slice(2)) {
  const [where, what] = [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)];
  const [host, port] = [where.slice(0, where.lastIndexOf(':')), Number(where.slice(where.lastIndexOf(':') + 1))];
  const error = await new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', resolve);
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(undefined)));
  });
  if (error) busy.push(`  port ${port} (${what}) is ${error.code === 'EADDRINUSE' ? 'in use' : `not available: ${error.code}`}`);
}
if (busy.length) {
  console.error(`npm start: nothing was started, because\n${busy.join('\n')}\nStop what holds it, or choose free ports.`);
  process.exit(1);
}
