// One line per device while a release deploys: a bar with the download percentage, then the
// deployment's state. On a terminal the lines are redrawn in place; elsewhere (a pipe, a log file)
// a line is printed only when a device's line changes.

export interface DeviceProgress {
  name: string;
  state: string;
  /** 0-100 while downloading */
  percent: number | null;
  error: string | null;
}

const WIDTH = 24;

export function progressLine(p: DeviceProgress, nameWidth: number): string {
  const done = p.state === 'succeeded' ? WIDTH : p.percent === null ? 0 : Math.round((p.percent / 100) * WIDTH);
  const bar = `[${'#'.repeat(done)}${'-'.repeat(WIDTH - done)}]`;
  const pct = p.state === 'succeeded' ? '100%' : p.percent === null ? '    ' : `${String(Math.round(p.percent)).padStart(3)}%`;
  return `${p.name.padEnd(nameWidth)}  ${bar} ${pct}  ${p.state}`;
}

export class ProgressView {
  private drawn = 0;
  private readonly last = new Map<string, string>();

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {}

  render(devices: DeviceProgress[]): void {
    const width = Math.max(6, ...devices.map((d) => d.name.length));
    const lines = devices.map((d) => progressLine(d, width));
    if (this.out.isTTY) {
      // back to the first line we drew, then every line again
      const up = this.drawn ? `\x1b[${this.drawn}A` : '';
      this.out.write(`${up}${lines.map((l) => `\r\x1b[2K${l}\n`).join('')}`);
      this.drawn = lines.length;
      return;
    }
    for (const [i, d] of devices.entries()) {
      const text = `${d.name}: ${d.state}${d.percent !== null && d.state === 'downloading' ? ` ${Math.round(d.percent)}%` : ''}`;
      if (this.last.get(d.name) !== text) this.out.write(`${lines[i] ? text : ''}\n`);
      this.last.set(d.name, text);
    }
  }
}
