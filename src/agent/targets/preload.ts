// balena preload: apps.json becomes the first target, then is renamed so it is used once.
import fsp from '../../shared/fsAsync.js';
import { ValidationError } from '../../shared/errors.js';
import type { TargetState } from '../../shared/targetState.js';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import type { EventLog } from '../eventLog.js';

export async function preload(file: string, setTarget: (input: unknown, source: string) => Promise<unknown>, log: EventLog): Promise<void> {
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch {
    return;
  }
  try {
    const json = JSON.parse(text) as { apps?: unknown };
    const dropped: string[] = [];
    const { fromBalenaApps } = await import('../../shared/balenaTarget.js');
    const target = isBosunTarget(json) ? json : fromBalenaApps(json as Parameters<typeof fromBalenaApps>[0], dropped);
    if (dropped.length) log.warn(`Preload: unsupported compose keys ignored: ${dropped.join(', ')}`);
    await setTarget(target, 'preload');
    await fsp.rename(file, `${file}.preloaded`);
    await writeFileAtomic(file, '{}\n');
    log.info(`Preloaded apps from ${file}`);
  } catch (err) {
    const msg = err instanceof ValidationError ? err.message : `not usable (${(err as Error).message})`;
    log.error(`Preload file ${file} rejected: ${msg}`);
  }
}

function isBosunTarget(json: { apps?: unknown }): json is TargetState {
  const apps = json.apps as Record<string, { release?: unknown }> | undefined;
  return !!apps && Object.values(apps).every((a) => typeof a === 'object' && a !== null && 'release' in a);
}
