// KVM or software emulation (TCG). On some machines /dev/kvm exists but a VM under it hangs
// silently, or qemu aborts setting it up: KVM is used only when the VM prints its first console line
// in time, else the VM is started again under TCG. The verdict is kept (kvm.json) per host kernel,
// so the wait is paid once.
import { constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../../../shared/atomicFile.js';
import fs from '../../../shared/fsAsync.js';
import type { EventLog } from '../../eventLog.js';
import { UnikError } from '../provider.js';
import type { Accel, VmSpec } from './qemuArgs.js';
import { type Launch, launch } from './vm.js';

/** a KVM that boots prints within this; one that hangs prints nothing */
const KVM_FIRST_OUTPUT_MS = 5000;

export async function launchVm(spec: (accel: Accel) => VmSpec, stateDir: string, log: EventLog): Promise<{ pid: number; accel: Accel }> {
  let launched: Launch | undefined;
  if ((await kvmVerdict(stateDir)) !== false) {
    launched = await launch(spec('kvm'), KVM_FIRST_OUTPUT_MS).catch((err: Error) => {
      if (err instanceof UnikError && err.kind === 'conflict') throw err; // a taken port: the same under TCG
      return { hung: err.message };
    });
    await writeFileAtomic(path.join(stateDir, 'kvm.json'), JSON.stringify({ hostKernel: os.release(), works: !('hung' in launched) }));
    if (!('hung' in launched)) return { pid: launched.pid, accel: 'kvm' };
    log.warn(`UniK qemu: KVM does not work here (${launched.hung}); using software emulation (TCG)`);
  }
  launched = await launch(spec('tcg'));
  if ('hung' in launched) throw new UnikError('failed', 'qemu hung');
  return { pid: launched.pid, accel: 'tcg' };
}

/** false: KVM is known not to work here (no usable /dev/kvm, or it failed on this host kernel); else worth a try */
async function kvmVerdict(stateDir: string): Promise<boolean | undefined> {
  const usable = await fs.access('/dev/kvm', constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
  if (!usable) return false;
  try {
    const v = JSON.parse(await fs.readFile(path.join(stateDir, 'kvm.json'), 'utf8')) as { hostKernel: string; works: boolean };
    return v.hostKernel === os.release() ? v.works : undefined;
  } catch {
    return undefined;
  }
}
