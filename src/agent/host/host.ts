// The one interface through which the agent acts on the host OS: power, the identification LED,
// hostname and proxy. Two backends: `system` for a real device, `sandbox` for development and
// tests, which keeps the same files under a folder and records power actions and blinks instead
// of performing them.
import fs from '../../shared/fsAsync.js';
import path from 'node:path';
import type { EventLog } from '../eventLog.js';
import { HostConfigFiles, type HostConfig, type HostConfigPatch } from './hostConfig.js';
import { isoTime } from '../../shared/isoTime.js';

export const BLINK_MS = 15_000;

/** child_process is loaded only when the host is really asked to act (it costs memory at start). */
async function run(cmd: string, args: string[]): Promise<void> {
  const [{ execFile }, { promisify }] = await Promise.all([import('node:child_process'), import('node:util')]);
  await promisify(execFile)(cmd, args);
}

export type PowerAction = 'reboot' | 'shutdown';

export interface Host {
  readonly kind: 'system' | 'sandbox';
  power(action: PowerAction): Promise<void>;
  /** Starts blinking the identification LED for 15 s; returns at once. */
  blink(): void;
  readConfig(): Promise<HostConfig>;
  applyConfig(patch: HostConfigPatch): Promise<void>;
}

export interface HostOptions {
  kind: 'system' | 'sandbox';
  /** system: `/` by default; sandbox: the folder that stands in for the host */
  root?: string;
  /** system: the LED's sysfs folder, e.g. /sys/class/leds/led0 (none: blink is logged only) */
  ledPath?: string;
}

export function createHost(opts: HostOptions, defaultHostname: string, log: EventLog): Host {
  if (opts.kind === 'sandbox') {
    if (!opts.root) throw new Error('a sandbox host needs a folder');
    return new SandboxHost(new HostConfigFiles(opts.root, defaultHostname), opts.root);
  }
  return new SystemHost(new HostConfigFiles(opts.root ?? '/', defaultHostname), log, opts.ledPath);
}

class SandboxHost implements Host {
  readonly kind = 'sandbox';

  constructor(
    private readonly files: HostConfigFiles,
    private readonly root: string,
  ) {}

  async power(action: PowerAction): Promise<void> {
    await this.record(action);
  }

  blink(): void {
    void this.record('blink');
  }

  readConfig(): Promise<HostConfig> {
    return this.files.read();
  }

  async applyConfig(patch: HostConfigPatch): Promise<void> {
    await this.files.apply(patch);
  }

  private async record(action: string): Promise<void> {
    await fs.mkdir(this.root, { recursive: true });
    await fs.appendFile(path.join(this.root, 'actions.jsonl'), `${JSON.stringify({ action, at: isoTime() })}\n`);
  }
}

class SystemHost implements Host {
  readonly kind = 'system';
  private blinking: NodeJS.Timeout | undefined;

  constructor(
    private readonly files: HostConfigFiles,
    private readonly log: EventLog,
    private readonly ledPath: string | undefined,
  ) {}

  async power(action: PowerAction): Promise<void> {
    // systemd asks logind, which honours inhibitor locks of other host services.
    await run('systemctl', [action === 'reboot' ? 'reboot' : 'poweroff']);
  }

  blink(): void {
    if (!this.ledPath) {
      this.log.info('Blink requested, but this device has no LED configured (--led)');
      return;
    }
    if (this.blinking) return;
    const brightness = path.join(this.ledPath, 'brightness');
    let on = false;
    const started = Date.now();
    const tick = () => {
      on = !on;
      const done = Date.now() - started >= BLINK_MS;
      fs.writeFile(brightness, done ? '0' : on ? '1' : '0').catch((err: Error) => this.log.warn(`Blink failed: ${err.message}`));
      if (done) {
        clearInterval(this.blinking);
        this.blinking = undefined;
      }
    };
    this.blinking = setInterval(tick, 250);
    this.blinking.unref();
  }

  readConfig(): Promise<HostConfig> {
    return this.files.read();
  }

  async applyConfig(patch: HostConfigPatch): Promise<void> {
    const changed = await this.files.apply(patch);
    const config = await this.files.read();
    if (changed.hostnameChanged) await this.bestEffort('hostnamectl', ['set-hostname', config.network.hostname]);
    if (changed.proxyChanged) await this.bestEffort('systemctl', ['try-restart', 'redsocks.service']);
  }

  /** The files are the source of truth (read again at boot); applying them live may not be possible everywhere. */
  private async bestEffort(cmd: string, args: string[]): Promise<void> {
    try {
      await run(cmd, args);
    } catch (err) {
      this.log.warn(`${cmd} ${args.join(' ')} failed: ${(err as Error).message}; the change applies at the next boot`);
    }
  }
}
