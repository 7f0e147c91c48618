// Helpers for the virtio tests: a virt machine (no kernel, VM not started, so only the test
// touches guest memory) with in-memory qcow2 drives and virtio-blk devices, register access to a
// transport, and a minimal split-queue driver written in TypeScript (descriptor table, available
// and used rings in guest RAM) that the tests use to issue requests.
import { type VirtMachine, virtMachineCreate } from '../../../core/machine.ts';
import { type MemBlockFileProvider, blockSetIo, memBlockFileProviderCreate, qcow2Create } from '../../../core/block/index.ts';
import { addressSpaceLd, addressSpaceRead, addressSpaceSt, addressSpaceWrite, RAM_BASE } from '../../../core/memory/index.ts';
import { virtDeviceAdd, virtDriveAdd } from '../../../core/virt-virtio.ts';
import { VIRT_VIRTIO_BASE, VIRT_VIRTIO_SIZE } from '../../../core/hw/index.ts';

export const REG = {
  MAGIC: 0x000, VERSION: 0x004, DEVICE_ID: 0x008, VENDOR: 0x00c, DEVICE_FEATURES: 0x010, DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020, DRIVER_FEATURES_SEL: 0x024, QUEUE_SEL: 0x030, QUEUE_NUM_MAX: 0x034, QUEUE_NUM: 0x038,
  QUEUE_READY: 0x044, QUEUE_NOTIFY: 0x050, ISR: 0x060, ACK: 0x064, STATUS: 0x070, DESC_LO: 0x080, DESC_HI: 0x084,
  AVAIL_LO: 0x090, AVAIL_HI: 0x094, USED_LO: 0x0a0, USED_HI: 0x0a4, GENERATION: 0x0fc, CONFIG: 0x100,
} as const;

/** Guest addresses of the test driver's structures. */
export const Q = { desc: RAM_BASE + 0x10000, avail: RAM_BASE + 0x11000, used: RAM_BASE + 0x12000, bufs: RAM_BASE + 0x20000 };
export const QN = 16;

export interface VirtioRig {
  m: VirtMachine;
  files: MemBlockFileProvider;
  base: number;
}

/** A machine with `disks` qcow2 drives d0.. (size bytes each) and a virtio-blk on each. */
export function virtioRig(disks = 1, size = 1 << 20, devOpts = ''): VirtioRig {
  const m = virtMachineCreate({ autostart: false });
  const files = memBlockFileProviderCreate();
  blockSetIo(m, files);
  for (let i = 0; i < disks; i++) {
    const f = files.create(`d${i}.qcow2`);
    qcow2Create(f, { size });
    f.close();
    const r = virtDriveAdd(m, `if=none,file=d${i}.qcow2,format=qcow2,id=d${i},node-name=disk${i}`);
    if (!r.ok) throw new Error(r.error);
    const err = virtDeviceAdd(m, `virtio-blk-device,drive=d${i}${devOpts}`);
    if (err !== null) throw new Error(err);
  }
  return { m, files, base: VIRT_VIRTIO_BASE + 7 * VIRT_VIRTIO_SIZE };
}

export function rd(r: VirtioRig, off: number, size = 4): number {
  return addressSpaceLd(r.m.as, r.base + off, size) >>> 0;
}

export function wr(r: VirtioRig, off: number, v: number, size = 4): void {
  addressSpaceSt(r.m.as, r.base + off, size, v);
}

export function le16(r: VirtioRig, addr: number): number {
  const b = new Uint8Array(2);
  addressSpaceRead(r.m.as, addr, b);
  return b[0]! | (b[1]! << 8);
}

export function le32(r: VirtioRig, addr: number): number {
  const b = new Uint8Array(4);
  addressSpaceRead(r.m.as, addr, b);
  return new DataView(b.buffer).getUint32(0, true);
}

export function put(r: VirtioRig, addr: number, bytes: Uint8Array): void {
  addressSpaceWrite(r.m.as, addr, bytes);
}

export function get(r: VirtioRig, addr: number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  addressSpaceRead(r.m.as, addr, b);
  return b;
}

/** Status ACK|DRIVER, VERSION_1, FEATURES_OK, queue 0 with QN entries, DRIVER_OK. */
export function driverInit(r: VirtioRig): void {
  wr(r, REG.STATUS, 0);
  wr(r, REG.STATUS, 3);
  wr(r, REG.DRIVER_FEATURES_SEL, 1);
  wr(r, REG.DRIVER_FEATURES, 1);
  wr(r, REG.STATUS, 11);
  wr(r, REG.QUEUE_SEL, 0);
  wr(r, REG.QUEUE_NUM, QN);
  wr(r, REG.DESC_LO, Q.desc);
  wr(r, REG.AVAIL_LO, Q.avail);
  wr(r, REG.USED_LO, Q.used);
  wr(r, REG.QUEUE_READY, 1);
  wr(r, REG.STATUS, 15);
}

/** One descriptor: buffer at addr, len bytes, device-writable or not, chained to next. */
export interface TestDesc {
  addr: number;
  len: number;
  write: boolean;
}

/** Write a chain at descriptor index `head` and offer it (avail ring); does not notify. */
export function offer(r: VirtioRig, head: number, chain: TestDesc[]): void {
  chain.forEach((d, i) => {
    const b = new Uint8Array(16);
    const dv = new DataView(b.buffer);
    dv.setUint32(0, d.addr, true);
    dv.setUint32(8, d.len, true);
    dv.setUint16(12, (i < chain.length - 1 ? 1 : 0) | (d.write ? 2 : 0), true);
    dv.setUint16(14, head + i + 1, true);
    put(r, Q.desc + 16 * (head + i), b);
  });
  const idx = le16(r, Q.avail + 2);
  const e = new Uint8Array(2);
  new DataView(e.buffer).setUint16(0, head, true);
  put(r, Q.avail + 4 + 2 * (idx % QN), e);
  const n = new Uint8Array(2);
  new DataView(n.buffer).setUint16(0, (idx + 1) & 0xffff, true);
  put(r, Q.avail + 2, n);
}

/** A virtio-blk request chain in buffer area `slot`: header, data (len), status byte. */
export function blkRequest(r: VirtioRig, slot: number, type: number, sector: number, data: Uint8Array | number): TestDesc[] {
  const base = Q.bufs + slot * 0x3000;
  const hdr = new Uint8Array(16);
  const dv = new DataView(hdr.buffer);
  dv.setUint32(0, type, true);
  dv.setBigUint64(8, BigInt(sector), true);
  put(r, base, hdr);
  put(r, base + 0x2fff, Uint8Array.of(0xff));
  const chain: TestDesc[] = [{ addr: base, len: 16, write: false }];
  if (typeof data === 'number') {
    if (data > 0) chain.push({ addr: base + 0x100, len: data, write: true });
  } else {
    put(r, base + 0x100, data);
    chain.push({ addr: base + 0x100, len: data.length, write: false });
  }
  chain.push({ addr: base + 0x2fff, len: 1, write: true });
  return chain;
}

export function statusOf(r: VirtioRig, slot: number): number {
  return get(r, Q.bufs + slot * 0x3000 + 0x2fff, 1)[0]!;
}

export function dataOf(r: VirtioRig, slot: number, n: number): Uint8Array {
  return get(r, Q.bufs + slot * 0x3000 + 0x100, n);
}

/** Used ring entry i: [id, len]. */
export function usedElem(r: VirtioRig, i: number): [number, number] {
  return [le32(r, Q.used + 4 + 8 * (i % QN)), le32(r, Q.used + 8 + 8 * (i % QN))];
}
