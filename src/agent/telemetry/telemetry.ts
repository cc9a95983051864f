// Telemetry on the device: the points apps post to the device API and the device's own metrics go
// to a buffer on disk, and in cloud mode up to the control plane's logbook. Loaded on first use
// (agent.ts): an agent whose apps never post telemetry, without a control plane and with the
// metrics off, never loads this.
import { pointJson, type Point } from '../../shared/telemetry.js';
import type { EventLog } from '../eventLog.js';
import type { AgentDb } from '../store/database.js';
import { DeviceMetrics } from './deviceMetrics.js';
import { TelemetryBuffer } from './telemetryBuffer.js';
import type { TelemetrySettings } from './telemetrySettings.js';
import { TelemetryUploader, type Uplink } from './telemetryUploader.js';

export interface TelemetryOptions {
  db: AgentDb;
  log: EventLog;
  settings: TelemetrySettings;
  /** the device metrics' disk usage is that of this folder's file system */
  dataDir: string;
  /** cloud mode: where the points go */
  uplink?: Uplink;
}

export class Telemetry {
  private readonly uploader: TelemetryUploader | undefined;
  private readonly metrics: DeviceMetrics | undefined;

  private constructor(
    private readonly buffer: TelemetryBuffer,
    private readonly opts: TelemetryOptions,
  ) {
    this.uploader = opts.uplink ? new TelemetryUploader(buffer, opts.uplink, opts.log) : undefined;
    const { metricsIntervalMs } = opts.settings;
    if (metricsIntervalMs) {
      this.metrics = new DeviceMetrics({
        intervalMs: metricsIntervalMs,
        dataDir: opts.dataDir,
        record: (points) => this.record(points),
        onError: (err) => opts.log.logger.warn({ err }, 'device metrics not recorded'),
      });
    }
  }

  static async start(opts: TelemetryOptions): Promise<Telemetry> {
    const telemetry = new Telemetry(await TelemetryBuffer.open(opts.db, opts.settings.bufferBytes), opts);
    telemetry.metrics?.start();
    // what an earlier run left (offline, or stopped before the upload)
    if (telemetry.buffer.size.points) telemetry.uploader?.kick(0);
    return telemetry;
  }

  /** Checked points, kept on disk before this returns, uploaded soon in cloud mode. */
  async record(points: readonly Point[]): Promise<void> {
    const dropped = await this.buffer.add(points.map((p) => JSON.stringify(pointJson(p))));
    if (dropped) this.opts.log.warn(`Telemetry buffer full (${this.opts.settings.bufferBytes} bytes): the ${dropped} oldest points were dropped`);
    this.uploader?.kick();
  }

  async stop(): Promise<void> {
    this.metrics?.stop();
    await this.uploader?.stop();
  }
}
