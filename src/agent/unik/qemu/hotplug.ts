// A volume attached to or detached from a running VM without restarting it. Attach: QMP
// `blockdev-add` (the volume's disk file, raw) + `device_add virtio-blk-pci` with the serial the init
// mounts by, then the init is asked on its control port to mount it. Detach: the init unmounts it
// first (so no write is lost), then `device_del` (the guest ejects it over ACPI) and `blockdev-del`.
// Each step is checked; a failure throws, and the caller falls back to a restart with the new disks.
import net from 'node:net';
import { controlSocket, qmpSocket } from './qemuArgs.js';
import { diskDevice, diskSerial, HOT_REPLY } from './guest.js';
import { qmpCommand } from './qmp.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** the init's answer: a hot-plugged disk may take seconds to appear under software emulation */
const INIT_MS = 20_000;
const UNPLUG_MS = 20_000;
const MAX_ANSWER = 64 * 1024;

export interface HotDisk {
  /** the mount point's place among the image's (its serial and device id) */
  index: number;
  /** the volume's disk file */
  file: string;
  volumeId: string;
}

/** A disk hot-plugged with -blockdev's node name of its volume (one made at boot has a -drive id instead). */
const nodeName = (volumeId: string) => `v${volumeId}`;

export async function hotAttach(dir: string, disk: HotDisk): Promise<void> {
  const qmp = qmpSocket(dir);
  const node = nodeName(disk.volumeId);
  await qmpCommand(qmp, 'blockdev-add', 5000, { driver: 'raw', 'node-name': node, file: { driver: 'file', filename: disk.file } });
  await qmpCommand(qmp, 'device_add', 5000, { driver: 'virtio-blk-pci', drive: node, id: diskDevice(disk.index), serial: diskSerial(disk.index) });
  await askInit(dir, `mount ${disk.index}`, `${HOT_REPLY} mounted ${disk.index}`);
}

export async function hotDetach(dir: string, disk: HotDisk): Promise<void> {
  const qmp = qmpSocket(dir);
  await askInit(dir, `umount ${disk.index}`, `${HOT_REPLY} umounted ${disk.index}`);
  const device = diskDevice(disk.index);
  await qmpCommand(qmp, 'device_del', 5000, { id: device });
  for (const end = Date.now() + UNPLUG_MS; ; await sleep(200)) {
    const children = (await qmpCommand(qmp, 'qom-list', 5000, { path: '/machine/peripheral' })) as { name: string }[];
    if (!children.some((c) => c.name === device)) break;
    if (Date.now() > end) throw new Error(`the guest did not release ${device} in ${UNPLUG_MS / 1000} s`);
  }
  // a disk given at boot (-drive) goes with its device; one hot-plugged earlier has its node to delete
  // (qemu: "Failed to find node with node-name=…" for the former)
  await qmpCommand(qmp, 'blockdev-del', 5000, { 'node-name': nodeName(disk.volumeId) }).catch((err: Error) => {
    if (!/find node|not found/i.test(err.message)) throw err;
  });
}

/** A request line to the init on the control port, and its answer line (the port also echoes what was sent). */
function askInit(dir: string, line: string, answer: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(controlSocket(dir), () => conn.write(`${line}\n`));
    let heard = '';
    const done = (err?: Error) => {
      conn.destroy();
      if (err) reject(err);
      else resolve();
    };
    conn.setTimeout(INIT_MS, () => done(new Error(`the init did not answer "${line}" in ${INIT_MS / 1000} s`)));
    conn.on('error', done);
    // an init of an image built before hot-plugging takes any line for `stop`: its VM powers off
    conn.on('close', () => done(new Error(`the control port closed before the init answered "${line}"`)));
    conn.on('data', (chunk: Buffer) => {
      heard = (heard + chunk.toString('latin1')).slice(-MAX_ANSWER);
      if (heard.includes(answer)) done();
    });
  });
}
