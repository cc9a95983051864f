// Parts of the gateway tests (dependent apps and devices): a dependent app's image (only files under
// /assets, FROM scratch: it could not run if anyone tried), built on the test engine and pushed to the
// test registry; and a gateway app's service running a hook server (busybox httpd + a CGI script)
// that records every hook and answers 202 to a device's first two updates, 200 after.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ServiceTarget } from '../../src/shared/targetState.js';
import { docker, freePort, image, registry, waitFor } from './harness.js';
import { tarOf } from './tarFiles.js';

export interface DependentImage {
  ref: string;
  /** path under /assets → content */
  files: Map<string, Buffer>;
}

const auth = { username: registry.username, password: registry.password, serveraddress: registry.url };

/** Builds and pushes `<registry>/bosun-test/dependent-<pid>:<tag>` with random files under /assets. */
export async function dependentImage(tag: string): Promise<DependentImage> {
  const ref = `${registry.url}/bosun-test/dependent-${process.pid}:${tag}`;
  const files = new Map([
    ['firmware.bin', randomBytes(200_000)],
    ['sub/notes.txt', Buffer.from(`firmware ${tag}\n`)],
  ]);
  const context = tarOf(
    new Map([['Dockerfile', Buffer.from('FROM scratch\nCOPY assets /assets\n')], ...[...files].map(([n, d]) => [`assets/${n}`, d] as const)]),
  );
  const build = await docker.buildImage(Readable.from([context]), { t: ref });
  await followed(build);
  await followed(await docker.getImage(ref).push({ authconfig: auth }));
  // only the registry keeps it: the agent under test pulls it
  await docker.getImage(ref).remove({ force: true });
  return { ref, files };
}

function followed(stream: NodeJS.ReadableStream): Promise<void> {
  return new Promise((resolve, reject) =>
    docker.modem.followProgress(
      stream,
      (err: Error | null, out: { error?: string }[]) => {
        const failed = out?.find((o) => o.error);
        if (err || failed) reject(err ?? new Error(failed!.error));
        else resolve();
      },
      () => undefined,
    ),
  );
}

const CGI = `#!/bin/sh
body=$(cat)
id=$(echo "$PATH_INFO" | tr -dc 'a-z0-9' | head -c 64)
n=$(cat /www/n_$id 2>/dev/null || echo 0)
if [ "$REQUEST_METHOD" = PUT ] && [ "\${PATH_INFO%/restart}" = "$PATH_INFO" ]; then n=$((n+1)); echo $n > /www/n_$id; fi
echo "$REQUEST_METHOD $PATH_INFO $body" >> /www/calls
if [ "$REQUEST_METHOD" = PUT ] && [ "\${PATH_INFO%/restart}" = "$PATH_INFO" ] && [ $n -le 2 ]; then status='202 Accepted'; else status='200 OK'; fi
printf 'HTTP/1.1 %s\\r\\nContent-Type: text/plain\\r\\n\\r\\nok\\n' "$status"
`;

export interface HookServer {
  port: number;
  /** the command of the gateway app's service: the hook server on port 1337 of its container */
  command: string[];
  /** where the agent finds it: the container's port published on the host's loopback */
  environment: Record<string, string>;
  /** the gateway app's service (a target's), its port published */
  service: ServiceTarget;
  /** hooks received so far: `METHOD /<uuid>[/restart] <body>` */
  calls(): Promise<string[]>;
}

export async function hookServer(): Promise<HookServer> {
  const port = await freePort();
  const script =
    `mkdir -p /www/cgi-bin && cat > /www/cgi-bin/hook <<'EOF'\n${CGI}EOF\n` + 'chmod +x /www/cgi-bin/hook && touch /www/calls && exec httpd -f -p 1337 -h /www';
  const command = ['sh', '-c', script];
  const environment = { BALENA_DEPENDENT_DEVICES_HOOK_ADDRESS: `http://0.0.0.0:${port}/cgi-bin/hook/` };
  const service: ServiceTarget = { image: image('v1'), command, ports: [`127.0.0.1:${port}:1337`], environment };
  const calls = async () => {
    const res = await fetch(`http://127.0.0.1:${port}/calls`).catch(() => undefined);
    if (!res?.ok) return [];
    return (await res.text()).split('\n').filter(Boolean);
  };
  return { port, command, environment, service, calls };
}

/** Waits until the hook server has received calls matching `pattern` at least `count` times. */
export async function hookCalls(server: HookServer, pattern: RegExp, count = 1, timeoutMs = 60_000): Promise<string[]> {
  return waitFor(
    `${count} hook call(s) matching ${pattern}`,
    async () => {
      const matching = (await server.calls()).filter((c) => pattern.test(c));
      return matching.length >= count ? matching : undefined;
    },
    timeoutMs,
  );
}

/** The body of a recorded hook call. */
export const hookBody = (call: string): unknown => JSON.parse(call.split(' ').slice(2).join(' '));
