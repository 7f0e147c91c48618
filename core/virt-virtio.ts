// The virt board's block devices (hw/riscv/virt.c's virtio-mmio transports, blockdev.c drive_new,
// softmmu/qdev-monitor.c qdev_device_add for virtio-blk-device): eight virtio-mmio transports at
// 0x10001000 + 0x1000·i on PLIC sources 1 + i, the block layer's hooks where do_vm_stop and
// qmp_cont call it, -drive and -device virtio-blk-device, and each device's savevm section.
// As in QEMU, -device takes the highest free transport first (the bus list is newest first),
// so the first disk sits at 0x10008000 on IRQ 8. A drive with if=virtio gets a
// virtio-blk-device too (QEMU would plug a virtio-blk-pci; detvm has no PCI).

import { assert } from './util/index.ts';
import { addressSpaceAddRegion } from './memory/index.ts';
import { qemuCpuKick, qemuRegisterReset } from './system/index.ts';
import {
  type BlockBackend, bdrvDrainAll, bdrvFlushAll, blkByName, blockState, driveNew, driveParse, qemuOptsSplit,
} from './block/index.ts';
import {
  type VirtIOBlock, type VirtioMmioProxy, VIRTIO_COUNT, VIRTIO_IRQ_BASE, plicSetIrq, virtioBlkRealize,
  virtioMmioCreate, virtioMmioFreeTransport, virtioMmioReset,
} from './hw/index.ts';
import { vmstateRegister } from './migration/index.ts';
import { virtioBlkCommit, virtioBlkDevPath, virtioBlkSavedState, vmstateVirtioBlk } from './migration/machine/virtio-mmio.ts';
import type { VirtMachine } from './machine.ts';

/** The board's virtio part. */
export interface VirtVirtio {
  transports: VirtioMmioProxy[];
  blks: VirtIOBlock[];
}

/**
 * Create the eight transports with their regions, IRQ lines and reset handlers, and connect the
 * block layer's drain, flush and activate to the run-state layer. @qemu virt_machine_init
 */
export function virtVirtioCreate(m: VirtMachine): VirtVirtio {
  const transports: VirtioMmioProxy[] = [];
  for (let i = 0; i < VIRTIO_COUNT; i++) {
    const irq = VIRTIO_IRQ_BASE + i;
    const { proxy, region } = virtioMmioCreate(m, m.as, i, (level) => plicSetIrq(m.plic, irq, level),
      (msg) => m.sys.report(msg));
    addressSpaceAddRegion(m.as, region);
    qemuRegisterReset(m, 'virtio_mmio_reset', () => virtioMmioReset(proxy));
    transports.push(proxy);
  }
  m.sys.block = {
    drainAll: () => bdrvDrainAll(m),
    flushAll: () => bdrvFlushAll(m),
    activateAll: () => {
      // qmp_cont: blk_iostatus_reset on every backend; detvm's images are always active.
      for (const blk of blockState(m).backends) blk.ioStatus = 'ok';
      return null;
    },
  };
  return { transports, blks: [] };
}

/** Plug virtio-blk over `blk` into the next free transport and register its section. */
function virtioBlkAdd(m: VirtMachine, blk: BlockBackend, id: string | null, serial: string | null): string | null {
  const proxy = virtioMmioFreeTransport(m.virtio.transports);
  if (!proxy) return "No 'virtio-bus' bus found for device 'virtio-blk-device'";
  const s = virtioBlkRealize(m, proxy, blk, {
    id, serial, anonIndex: m.virtio.blks.filter((b) => b.id === null).length,
    onSubmit: () => {
      if (m.sys.currentCpu !== null) qemuCpuKick(m, m.sys.currentCpu);
    },
  });
  if (typeof s === 'string') return s;
  m.virtio.blks.push(s);
  vmstateRegister(m.migration.sv, 0, vmstateVirtioBlk(s), virtioBlkSavedState(s), {
    devPath: virtioBlkDevPath(proxy),
    commit: (live, staged) => virtioBlkCommit(s, live, staged),
  });
  return null;
}

/**
 * `-drive SPEC`: open the image and create the drive (and, with if=virtio, its device). Returns
 * QEMU's warnings, or the error text. The block layer's file provider must be set.
 * @qemu blockdev.c drive_new
 */
export function virtDriveAdd(m: VirtMachine, spec: string): { ok: true; warnings: string[] } | { ok: false; error: string } {
  const o = driveParse(spec);
  if (!o.ok) return { ok: false, error: o.error };
  const r = driveNew(m, o.value, 'none');
  if (!r.ok) return { ok: false, error: r.error };
  if (r.value.blk.ifType === 'virtio') {
    const err = virtioBlkAdd(m, r.value.blk, null, o.value.serial);
    if (err !== null) return { ok: false, error: err };
  }
  return { ok: true, warnings: r.value.warnings };
}

const VIRTIO_BLK_PROPS = new Set(['driver', 'drive', 'id', 'serial', 'bus']);

/**
 * `-device virtio-blk-device,drive=ID[,id=NAME][,serial=S]`. Returns null or QEMU's error text.
 * @qemu softmmu/qdev-monitor.c qdev_device_add, hw/block/virtio-blk.c realize
 */
export function virtDeviceAdd(m: VirtMachine, spec: string): string | null {
  const opts = qemuOptsSplit(spec);
  const first = opts[0];
  if (!first) return "Parameter 'driver' is missing";
  // The first word is the driver unless written as driver=...
  const driver = first[0] === 'driver' ? first[1] : first[1] === 'on' && !spec.startsWith(`${first[0]}=`) ? first[0] : null;
  if (driver === null) return "Parameter 'driver' is missing";
  const props = new Map<string, string>();
  for (const [k, v] of opts.slice(1)) props.set(k, v);
  if (driver === 'virtio-blk' || driver === 'virtio-blk-pci') {
    return `'${driver}' is not supported by detvm (no PCI bus): use virtio-blk-device`;
  }
  if (driver !== 'virtio-blk-device') return `'${driver}' is not a valid device model name`;
  for (const k of props.keys()) {
    if (!VIRTIO_BLK_PROPS.has(k)) return `Property 'virtio-blk-device.${k}' not found`;
  }
  const drive = props.get('drive');
  if (drive === undefined) return 'drive property not set';
  const blk = blkByName(m, drive);
  if (!blk) return `Property 'virtio-blk-device.drive' can't find value '${drive}'`;
  return virtioBlkAdd(m, blk, props.get('id') ?? null, props.get('serial') ?? null);
}

/** The virtio-blk device on drive `name`, if any (tests and the library). */
export function virtVirtioBlkByDrive(m: VirtMachine, name: string): VirtIOBlock | null {
  const s = m.virtio.blks.find((b) => b.blk.name === name) ?? null;
  assert(s === null || s.proxy.dev === s.vdev, `virtio-blk on drive '${name}' is not plugged`);
  return s;
}
