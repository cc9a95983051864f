// What runs inside a qemu instance: the init (a busybox shell script, PID 1 of the VM) and the
// per-start settings it sources. Everything the API's caller chose (args, env, mount points) reaches
// the guest only as single-quoted shell words, so nothing of it is ever interpreted by the init.
import { APP_STARTED } from './console.js';

/** Debian builds virtio as modules; these are what the VM needs for its network and disks. */
export const VIRTIO_MODULES = [
  'virtio',
  'virtio_ring',
  'virtio_pci_modern_dev',
  'virtio_pci_legacy_dev',
  'virtio_pci',
  'failover',
  'net_failover',
  'virtio_net',
  'virtio_blk',
];

/** The serial of the virtio disk at the image's i-th mount point (what the init mounts it by). */
export const diskSerial = (i: number) => `bosun${i}`;
/** Its device id in qemu (what QMP's device_del names). */
export const diskDevice = (i: number) => `vd${i}`;
/** How the init answers a hot mount or umount on the control port: `<this> mounted|umounted <i>`. */
export const HOT_REPLY = 'bosun-init: hot';

/** A POSIX shell word that stands for exactly `s` (which must hold no NUL). */
export function shellQuote(s: string): string {
  if (s.includes('\0')) throw new Error('NUL in a shell word');
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** The `depends=` list of a kernel module's .modinfo section. */
export function moduleDepends(ko: Buffer): string[] {
  const at = ko.indexOf('\0depends=');
  if (at < 0) return [];
  const end = ko.indexOf(0, at + 1);
  const list = ko.subarray(at + 9, end < 0 ? undefined : end).toString('latin1');
  return list ? list.split(',') : [];
}

/**
 * The modules in an order insmod accepts: each after what it depends on (Debian 6.1's virtio needs
 * virtio_ring first), else in the given order. A dependency outside the list is an error.
 */
export function loadOrder(names: readonly string[], depends: ReadonlyMap<string, readonly string[]>): string[] {
  const done: string[] = [];
  const visit = (name: string, path: string[]) => {
    if (done.includes(name)) return;
    if (path.includes(name)) throw new Error(`module dependency cycle: ${[...path, name].join(' -> ')}`);
    if (!names.includes(name)) throw new Error(`module ${path.at(-1)} needs ${name}, which is not packed`);
    for (const dep of depends.get(name) ?? []) visit(dep, [...path, name]);
    done.push(name);
  };
  for (const n of names) visit(n, []);
  return done;
}

/** /init of every image: mounts, modules, network, the instance's settings, then the app; powers off after it. */
export function initScript(modules: readonly string[]): string {
  return `#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /etc
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "bosun-init: booted"
for m in ${modules.join(' ')}; do insmod "/lib/modules/$m.ko" || echo "bosun-init: insmod $m failed"; done
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
echo "nameserver 10.0.2.3" > /etc/resolv.conf
# bosun_mount SERIAL DIR: the virtio disk with that serial, at DIR (disks may take a moment to appear,
# a hot-plugged one longer); fails when there is none
bosun_mount() {
  mkdir -p "$2"
  for try in $(seq 50); do
    for b in /sys/block/vd*; do
      if [ "$(cat "$b/serial" 2>/dev/null)" = "$1" ]; then
        # ext2 made here; a raw disk image may hold another filesystem: the kernel's guess then
        { mount -t ext2 "/dev/\${b##*/}" "$2" 2>/dev/null || mount "/dev/\${b##*/}" "$2"; } && echo "bosun-init: mounted $2"
        return
      fi
    done
    sleep 0.1
  done
  echo "bosun-init: no disk for $2"
  return 1
}
# the host's requests, a line each on the second serial port: stop (the app, gracefully); mount N and
# umount N (the disk of the image's N-th mount point, hot-plugged or about to be unplugged), answered there
bosun_serve() {
  while read -r cmd n; do
    case "$n" in *[!0-9]*) continue ;; esac
    p=""
    [ -n "$n" ] && eval "p=\\$bosun_point_$n"
    case "$cmd" in
      stop) echo "bosun-init: stop requested"; kill -TERM $app ;;
      mount) [ -n "$p" ] && bosun_mount "bosun$n" "$p" && echo "${HOT_REPLY} mounted $n" > /dev/ttyS1 ;;
      umount) [ -n "$p" ] && umount "$p" && echo "bosun-init: unmounted $p" && echo "${HOT_REPLY} umounted $n" > /dev/ttyS1 ;;
    esac
  done < /dev/ttyS1
}
. /bosun/config
cd /
echo "${APP_STARTED}"
bosun_run &
app=$!
bosun_serve &
wait $app
echo "bosun-init: the app exited with status $?"
for n in $bosun_points; do eval "p=\\$bosun_point_$n"; umount "$p" 2>/dev/null; done
sync
poweroff -f
`;
}

export interface GuestSettings {
  /** the app's file name under /app */
  app: string;
  args: readonly string[];
  env: Readonly<Record<string, string>>;
  /** every mount point the image declares, in order (the i-th is `mount i` on the control port) */
  points: readonly string[];
  /** mount point → the serial of its disk, for the mounts that have a volume */
  mounts: ReadonlyArray<{ mountPoint: string; serial: string }>;
  /** mount points the image declares that have no volume now: created empty */
  emptyMounts: readonly string[];
}

/** /bosun/config, sourced by the init: the mounts, and bosun_run, which runs the app with exactly this env and args. */
export function settingsScript(s: GuestSettings): string {
  const lines = s.points.map((p, i) => `bosun_point_${i}=${shellQuote(p)}`);
  lines.push(`bosun_points='${s.points.map((_, i) => i).join(' ')}'`);
  lines.push(...s.mounts.map((m) => `bosun_mount ${shellQuote(m.serial)} ${shellQuote(m.mountPoint)}`));
  lines.push(...s.emptyMounts.map((m) => `mkdir -p ${shellQuote(m)}`));
  const env = ['PATH=/bin', 'HOME=/', ...Object.entries(s.env).map(([k, v]) => `${k}=${v}`)].map(shellQuote);
  const argv = [`/app/${s.app}`, ...s.args].map(shellQuote);
  lines.push(`bosun_run() {\n  exec env -i ${env.join(' ')} ${argv.join(' ')}\n}`);
  return `${lines.join('\n')}\n`;
}
