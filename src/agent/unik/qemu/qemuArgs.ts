// The command line of one instance's qemu (pure). The `-name` marks the process as the instance's,
// which is how a restarted agent tells its VM from an unrelated process that reuses the pid.
import path from 'node:path';
import type { PortForward } from './validate.js';

export const QEMU = 'qemu-system-x86_64';
export type Accel = 'kvm' | 'tcg';

export interface VmSpec {
  id: string;
  /** the instance's folder: console.log, qmp.sock, ctl.sock */
  dir: string;
  kernel: string;
  initrd: string;
  memoryMb: number;
  accel: Accel;
  ports: readonly PortForward[];
  /** ext2 images, attached in this order as virtio disks with these serials and device ids (QMP's device_del names them) */
  disks: ReadonlyArray<{ file: string; serial: string; device: string }>;
  debug: boolean;
}

export const processName = (id: string) => `bosun-unik-${id}`;
export const consoleFile = (dir: string) => path.join(dir, 'console.log');
export const qmpSocket = (dir: string) => path.join(dir, 'qmp.sock');
export const controlSocket = (dir: string) => path.join(dir, 'ctl.sock');

/** qemu's option syntax: a comma inside a value is written twice */
const opt = (value: string) => value.replaceAll(',', ',,');

export function kernelCmdline(debug: boolean): string {
  // panic=-1 with -no-reboot: a kernel panic ends the qemu process instead of hanging the instance
  return debug ? 'console=ttyS0 panic=-1 loglevel=7' : 'console=ttyS0 panic=-1 quiet';
}

export function qemuArgs(spec: VmSpec): string[] {
  const fwd = spec.ports.map((p) => `,hostfwd=tcp:127.0.0.1:${p.host}-:${p.guest}`).join('');
  const args = [
    '-name',
    processName(spec.id),
    '-accel',
    spec.accel,
    '-M',
    'pc',
    '-smp',
    '1',
    '-m',
    String(spec.memoryMb),
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    '-no-reboot',
    '-kernel',
    spec.kernel,
    '-initrd',
    spec.initrd,
    '-append',
    kernelCmdline(spec.debug),
    '-chardev',
    `file,id=con,path=${opt(consoleFile(spec.dir))},append=on`,
    '-serial',
    'chardev:con',
    '-chardev',
    `socket,id=ctl,path=${opt(controlSocket(spec.dir))},server=on,wait=off`,
    '-serial',
    'chardev:ctl',
    '-qmp',
    `unix:${opt(qmpSocket(spec.dir))},server=on,wait=off`,
    '-netdev',
    `user,id=n0${fwd}`,
    '-device',
    'virtio-net-pci,netdev=n0',
  ];
  spec.disks.forEach((d, i) => {
    args.push('-drive', `file=${opt(d.file)},if=none,id=d${i},format=raw`, '-device', `virtio-blk-pci,drive=d${i},serial=${d.serial},id=${d.device}`);
  });
  return args;
}
