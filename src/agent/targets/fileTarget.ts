// A target-state file (local development without a control plane): applied at start and whenever it changes.
import fs from 'node:fs';
import fsp from '../../shared/fsAsync.js';
import type { TargetState } from '../../shared/targetState.js';
import type { EventLog } from '../eventLog.js';

export interface FileTargetDeps {
  /** the target the device follows now: an unchanged file is not applied again */
  current: () => TargetState | undefined;
  setTarget: (input: unknown, source: string) => Promise<unknown>;
  log: EventLog;
}

/** Applies `file` now, then on every change; returns what stops watching it. */
export async function followTargetFile(file: string, d: FileTargetDeps): Promise<() => void> {
  await applyTargetFile(file, d);
  return watchFile(file, () => void applyTargetFile(file, d));
}

async function applyTargetFile(file: string, d: FileTargetDeps): Promise<void> {
  try {
    const json = JSON.parse(await fsp.readFile(file, 'utf8')) as unknown;
    if (JSON.stringify(json) === JSON.stringify(d.current())) return;
    await d.setTarget(json, 'file');
    d.log.info(`Target state loaded from ${file}`);
  } catch (err) {
    d.log.error(`Target state in ${file} rejected, keeping the current one: ${(err as Error).message}`);
  }
}

function watchFile(file: string, onChange: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const listener = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, 200);
  };
  fs.watchFile(file, { interval: 1000 }, listener);
  return () => {
    clearTimeout(timer);
    fs.unwatchFile(file, listener);
  };
}
