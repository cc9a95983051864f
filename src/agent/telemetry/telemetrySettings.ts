// Telemetry's settings, from config.json: `metricsInterval` (ms between samples of the device's own
// metrics; 0 or absent: off; --metrics-interval overrides it) and `telemetryBufferBytes` (the bound
// of the points waiting on disk for the control plane). Checked when the agent starts, like the
// rest of config.json, although the telemetry itself is loaded only when first used.
import { Type } from '@sinclair/typebox';
import { assertValid } from '../../shared/validate.js';

export const DEFAULT_BUFFER_BYTES = 16 * 1024 * 1024;

const Settings = Type.Object({
  metricsInterval: Type.Optional(Type.Union([Type.Literal(0), Type.Integer({ minimum: 1000 })], { description: '0 (off) or at least 1000 ms' })),
  telemetryBufferBytes: Type.Optional(Type.Integer({ minimum: 64 * 1024, description: 'at least 65536 bytes' })),
});

export interface TelemetrySettings {
  /** 0: the device's metrics are not recorded */
  metricsIntervalMs: number;
  bufferBytes: number;
}

export function telemetrySettings(config: Record<string, unknown>, configPath: string, metricsIntervalMs?: number): TelemetrySettings {
  const s = {
    ...(config.metricsInterval !== undefined ? { metricsInterval: config.metricsInterval } : {}),
    ...(config.telemetryBufferBytes !== undefined ? { telemetryBufferBytes: config.telemetryBufferBytes } : {}),
  };
  assertValid(Settings, s, `config file ${configPath}`);
  return { metricsIntervalMs: metricsIntervalMs ?? s.metricsInterval ?? 0, bufferBytes: s.telemetryBufferBytes ?? DEFAULT_BUFFER_BYTES };
}
