// The virtio-mmio transport, version 2 (hw/virtio/virtio-mmio.c, QEMU 7.2, non-legacy) and the
// common virtio device state it fronts (hw/virtio/virtio.c: status, features, ISR, queues). The
// virt board has eight of them, 0x1000 apart from 0x10001000, on PLIC sources 1..8; a device
// (virtio-blk) is plugged into one. Without a device the transport reads as "virt", version 2,
// vendor "QEMU" and device id 0, and ignores writes, as QEMU's does.
// Invariants: the IRQ line is high iff isr != 0; vqs.length equals the device's queue count.

import { assert } from '../util/index.ts';
import type { LoopMachine } from '../loop/index.ts';
import type { AddressSpace, MemoryRegion } from '../memory/index.ts';
import { TRACE_DEVICES, traceEvent } from '../trace/index.ts';
import {
  type VirtQueueState, VIRTQUEUE_MAX_SIZE, virtQueueReset, virtQueueStateCreate, virtqueueShouldNotify,
} from './virtqueue.ts';

export const VIRT_VIRTIO_BASE = 0x10001000;
export const VIRT_VIRTIO_SIZE = 0x1000;
export const VIRTIO_COUNT = 8;
/** The register window of one transport. @qemu VIRTIO_MMIO size 0x200 */
export const VIRTIO_MMIO_REGION_SIZE = 0x200;
export const VIRT_MAGIC = 0x74726976; // "virt"
export const VIRT_VERSION = 2;
export const VIRT_VENDOR = 0x554d4551; // "QEMU"
/** @qemu VIRTIO_QUEUE_MAX */
export const VIRTIO_QUEUE_MAX = 1024;

export const VIRTIO_CONFIG_S_ACKNOWLEDGE = 1;
export const VIRTIO_CONFIG_S_DRIVER = 2;
export const VIRTIO_CONFIG_S_DRIVER_OK = 4;
export const VIRTIO_CONFIG_S_FEATURES_OK = 8;
export const VIRTIO_CONFIG_S_NEEDS_RESET = 0x40;
export const VIRTIO_F_VERSION_1 = 32;
export const VIRTIO_F_ANY_LAYOUT = 27;
export const VIRTIO_RING_F_INDIRECT_DESC = 28;

const REG = {
  MAGIC_VALUE: 0x000, VERSION: 0x004, DEVICE_ID: 0x008, VENDOR_ID: 0x00c, DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014, DRIVER_FEATURES: 0x020, DRIVER_FEATURES_SEL: 0x024, QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034, QUEUE_NUM: 0x038, QUEUE_READY: 0x044, QUEUE_NOTIFY: 0x050, INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064, STATUS: 0x070, QUEUE_DESC_LOW: 0x080, QUEUE_DESC_HIGH: 0x084, QUEUE_AVAIL_LOW: 0x090,
  QUEUE_AVAIL_HIGH: 0x094, QUEUE_USED_LOW: 0x0a0, QUEUE_USED_HIGH: 0x0a4, SHM_SEL: 0x0ac, SHM_LEN_LOW: 0x0b0,
  SHM_BASE_HIGH: 0x0bc, CONFIG_GENERATION: 0x0fc, CONFIG: 0x100,
} as const;

/** The transport's copy of one queue's registers (VirtIOMMIOQueue); the rings take effect at QueueReady. */
export interface VirtioMmioQueueRegs {
  num: number;
  enabled: boolean;
  desc: number[];
  avail: number[];
  used: number[];
}

/** Transport and common device state, as saved. @qemu VirtIOMMIOProxy + VirtIODevice */
export interface VirtioMmioState {
  hostFeaturesSel: number;
  guestFeaturesSel: number;
  /** What the driver wrote to DriverFeatures, low and high word. */
  guestFeatures: number[];
  /** Negotiated features (set at FEATURES_OK), low and high word. */
  features: number[];
  queueSel: number;
  status: number;
  isr: number;
  generation: number;
  /** virtio_error happened: the device ignores its queues until reset. */
  broken: boolean;
  regs: VirtioMmioQueueRegs[];
  vqs: VirtQueueState[];
}

/** A device on a transport (VirtioDeviceClass): its id, offer, config space and queue handlers. */
export interface VirtioDevice {
  /** QOM type name, e.g. 'virtio-blk-device'; its vmstate name is in the device's own file. */
  typeName: string;
  deviceId: number;
  /** Offered features, low and high word. */
  hostFeatures: readonly number[];
  /** Default size of each queue (queue count = length). */
  queueSizes: readonly number[];
  /** The current config space (little-endian, as virtio 1.x wants). */
  getConfig(): Uint8Array;
  /** The driver wrote `bytes` (the whole config space after the write). */
  setConfig(bytes: Uint8Array): void;
  /** The driver notified queue `n`. @qemu VirtQueue.handle_output */
  handleOutput(n: number): void;
  /** Device reset (status 0 or machine reset). */
  reset(): void;
}

/** One virtio-mmio transport of the board. */
export interface VirtioMmioProxy {
  m: LoopMachine;
  as: AddressSpace;
  index: number;
  base: number;
  s: VirtioMmioState;
  dev: VirtioDevice | null;
  setIrq: (level: boolean) => void;
  /** error_report: where virtio_error goes. */
  report: (msg: string) => void;
}

function regsCreate(): VirtioMmioQueueRegs {
  return { num: 0, enabled: false, desc: [0, 0], avail: [0, 0], used: [0, 0] };
}

export function virtioMmioStateCreate(): VirtioMmioState {
  return {
    hostFeaturesSel: 0, guestFeaturesSel: 0, guestFeatures: [0, 0], features: [0, 0], queueSel: 0, status: 0, isr: 0,
    generation: 0, broken: false, regs: [], vqs: [],
  };
}

/** The QEMU qdev path of transport `index`: the prefix of its device's savevm idstr. */
export function virtioMmioDevPath(base: number): string {
  return `virtio-mmio@${base.toString(16).padStart(16, '0')}`;
}

/** @qemu virtio_mmio_update_irq */
export function virtioMmioUpdateIrq(p: VirtioMmioProxy): void {
  p.setIrq(p.s.isr !== 0);
}

/** Interrupt the driver for queue `n` (unless it suppressed interrupts). @qemu virtio_notify */
export function virtioNotify(p: VirtioMmioProxy, n: number): void {
  const vq = p.s.vqs[n];
  assert(vq !== undefined, `virtio_notify on queue ${n} of a ${p.s.vqs.length}-queue device`);
  if (!virtqueueShouldNotify(p.as, vq)) return;
  traceEvent(p.m, TRACE_DEVICES, 'virtio_notify', { transport: p.index, vq: n });
  p.s.isr |= 1;
  virtioMmioUpdateIrq(p);
}

/** @qemu virtio_notify_config */
function virtioNotifyConfig(p: VirtioMmioProxy): void {
  if (!(p.s.status & VIRTIO_CONFIG_S_DRIVER_OK)) return;
  p.s.isr |= 3;
  p.s.generation = (p.s.generation + 1) >>> 0;
  virtioMmioUpdateIrq(p);
}

/**
 * A guest mistake the device cannot go on from: report it, mark the device broken and ask the
 * driver for a reset. @qemu hw/virtio/virtio.c virtio_error
 */
export function virtioError(p: VirtioMmioProxy, msg: string): void {
  p.report(msg);
  p.s.broken = true;
  if (hasFeature(p.s.features, VIRTIO_F_VERSION_1)) {
    p.s.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    virtioNotifyConfig(p);
  }
}

export function hasFeature(words: readonly number[], bit: number): boolean {
  return ((words[bit >> 5]! >>> (bit & 31)) & 1) !== 0;
}

/** Device reset: status, features, ISR, queues. @qemu virtio_reset */
export function virtioReset(p: VirtioMmioProxy): void {
  const dev = p.dev;
  if (!dev) return;
  dev.reset();
  const s = p.s;
  s.status = 0;
  s.features = [0, 0];
  s.isr = 0;
  s.queueSel = 0;
  s.broken = false;
  dev.queueSizes.forEach((n, i) => virtQueueReset(s.vqs[i]!, n));
  virtioMmioUpdateIrq(p);
}

/** Transport reset on machine reset. @qemu virtio_mmio_reset (non-legacy) */
export function virtioMmioReset(p: VirtioMmioProxy): void {
  virtioReset(p);
  p.s.hostFeaturesSel = 0;
  p.s.guestFeaturesSel = 0;
  p.s.guestFeatures = [0, 0];
  p.s.regs = p.s.regs.map(regsCreate);
}

/** @qemu virtio_mmio_soft_reset (status 0 written) */
function virtioMmioSoftReset(p: VirtioMmioProxy): void {
  for (const r of p.s.regs) r.enabled = false;
}

function selectedQueue(p: VirtioMmioProxy): number {
  const n = p.s.queueSel;
  return n < p.s.vqs.length ? n : -1;
}

function configRead(dev: VirtioDevice, off: number, size: number): number {
  const cfg = dev.getConfig();
  if (off + size > cfg.length) return size === 4 ? 0xffffffff : size === 2 ? 0xffff : 0xff;
  let v = 0;
  for (let i = size - 1; i >= 0; i--) v = v * 256 + cfg[off + i]!;
  return v >>> 0;
}

function configWrite(dev: VirtioDevice, off: number, size: number, value: number): void {
  const cfg = dev.getConfig().slice();
  if (off + size > cfg.length) return;
  for (let i = 0; i < size; i++) cfg[off + i] = (value >>> (8 * i)) & 0xff;
  dev.setConfig(cfg);
}

/** @qemu virtio_mmio_read (non-legacy) */
function virtioMmioRead(p: VirtioMmioProxy, off: number, size: number): number {
  const dev = p.dev;
  if (!dev) {
    if (off === REG.MAGIC_VALUE) return VIRT_MAGIC;
    if (off === REG.VERSION) return VIRT_VERSION;
    return off === REG.VENDOR_ID ? VIRT_VENDOR : 0;
  }
  if (off >= REG.CONFIG) return configRead(dev, off - REG.CONFIG, size);
  if (size !== 4) return 0; // "wrong size access to register!"
  const s = p.s;
  const q = selectedQueue(p);
  switch (off) {
    case REG.MAGIC_VALUE: return VIRT_MAGIC;
    case REG.VERSION: return VIRT_VERSION;
    case REG.DEVICE_ID: return dev.deviceId;
    case REG.VENDOR_ID: return VIRT_VENDOR;
    case REG.DEVICE_FEATURES: return s.hostFeaturesSel < 2 ? dev.hostFeatures[s.hostFeaturesSel]! >>> 0 : 0;
    case REG.QUEUE_NUM_MAX: return q >= 0 && s.vqs[q]!.num !== 0 ? VIRTQUEUE_MAX_SIZE : 0;
    case REG.QUEUE_READY: return q >= 0 && s.regs[q]!.enabled ? 1 : 0;
    case REG.INTERRUPT_STATUS: return s.isr;
    case REG.STATUS: return s.status;
    case REG.CONFIG_GENERATION: return s.generation;
    default:
      // SHM registers: no shared memory regions ("always return -1"); the rest is write-only or unknown.
      if (off >= REG.SHM_LEN_LOW && off <= REG.SHM_BASE_HIGH) return 0xffffffff;
      return 0;
  }
}

/** QueueReady: the rings the driver configured take effect. @qemu virtio_queue_set_rings */
function queueSetReady(p: VirtioMmioProxy, q: number, value: number): void {
  const r = p.s.regs[q]!;
  if (value === 0) {
    r.enabled = false;
    return;
  }
  const vq = p.s.vqs[q]!;
  queueSetNum(vq, r.num);
  if (vq.num === 0) return;
  const addr = (w: number[]): number => (w[1] === 0 ? w[0]! : Number.MAX_SAFE_INTEGER);
  vq.descAddr = addr(r.desc);
  vq.availAddr = addr(r.avail);
  vq.usedAddr = addr(r.used);
  vq.ready = true;
  r.enabled = true;
}

/** @qemu virtio_queue_set_num: a queue exists or not for good, and is at most 1024 long. */
function queueSetNum(vq: VirtQueueState, num: number): void {
  if ((num !== 0) !== (vq.num !== 0) || num > VIRTQUEUE_MAX_SIZE) return;
  vq.num = num;
}

/** @qemu virtio_mmio_write, case VIRTIO_MMIO_STATUS */
function writeStatus(p: VirtioMmioProxy, value: number): void {
  const s = p.s;
  if (value & VIRTIO_CONFIG_S_FEATURES_OK && !(s.status & VIRTIO_CONFIG_S_FEATURES_OK)) {
    // virtio_set_features keeps only what the device offers.
    const host = p.dev!.hostFeatures;
    s.features = [(s.guestFeatures[0]! & host[0]!) >>> 0, (s.guestFeatures[1]! & host[1]!) >>> 0];
  }
  traceEvent(p.m, TRACE_DEVICES, 'virtio_set_status', { transport: p.index, status: value & 0xff });
  s.status = value & 0xff;
  if (s.status === 0) {
    virtioReset(p);
    virtioMmioSoftReset(p);
  }
}

function writeQueueAddr(r: VirtioMmioQueueRegs, off: number, value: number): void {
  const word = (off & 4) >> 2;
  if (off < REG.QUEUE_AVAIL_LOW) r.desc[word] = value;
  else if (off < REG.QUEUE_USED_LOW) r.avail[word] = value;
  else r.used[word] = value;
}

/** @qemu virtio_mmio_write (non-legacy) */
function virtioMmioWrite(p: VirtioMmioProxy, off: number, size: number, value: number): void {
  const dev = p.dev;
  if (!dev) return;
  if (off >= REG.CONFIG) {
    configWrite(dev, off - REG.CONFIG, size, value);
    return;
  }
  if (size !== 4) return;
  const s = p.s;
  const q = selectedQueue(p);
  const v = value >>> 0;
  switch (off) {
    case REG.DEVICE_FEATURES_SEL: s.hostFeaturesSel = v; return;
    case REG.DRIVER_FEATURES:
      if (s.guestFeaturesSel < 2) s.guestFeatures[s.guestFeaturesSel] = v;
      return;
    case REG.DRIVER_FEATURES_SEL: s.guestFeaturesSel = v; return;
    case REG.QUEUE_SEL:
      if (v < VIRTIO_QUEUE_MAX) s.queueSel = v;
      return;
    case REG.QUEUE_NUM:
      if (q >= 0) {
        queueSetNum(s.vqs[q]!, v);
        s.regs[q]!.num = v & 0xffff;
      }
      return;
    case REG.QUEUE_READY:
      if (q >= 0) queueSetReady(p, q, v);
      return;
    case REG.QUEUE_NOTIFY:
      if (v < s.vqs.length && !s.broken && s.vqs[v]!.descAddr !== 0) {
        traceEvent(p.m, TRACE_DEVICES, 'virtio_queue_notify', { transport: p.index, vq: v });
        dev.handleOutput(v);
      }
      return;
    case REG.INTERRUPT_ACK:
      s.isr = (s.isr & ~v) >>> 0;
      virtioMmioUpdateIrq(p);
      return;
    case REG.STATUS: writeStatus(p, v); return;
    case REG.QUEUE_DESC_LOW: case REG.QUEUE_DESC_HIGH: case REG.QUEUE_AVAIL_LOW: case REG.QUEUE_AVAIL_HIGH:
    case REG.QUEUE_USED_LOW: case REG.QUEUE_USED_HIGH:
      if (q >= 0) writeQueueAddr(s.regs[q]!, off, v);
      return;
    default:
      return; // read-only or unknown register: QEMU logs a guest error and ignores it
  }
}

/** Create transport `index` of the board (no device yet) and its MMIO region. */
export function virtioMmioCreate(
  m: LoopMachine, as: AddressSpace, index: number, setIrq: (level: boolean) => void, report: (msg: string) => void,
): { proxy: VirtioMmioProxy; region: MemoryRegion } {
  assert(index >= 0 && index < VIRTIO_COUNT, `virtio-mmio transport ${index} does not exist`);
  const base = VIRT_VIRTIO_BASE + index * VIRT_VIRTIO_SIZE;
  const proxy: VirtioMmioProxy = { m, as, index, base, s: virtioMmioStateCreate(), dev: null, setIrq, report };
  const region: MemoryRegion = {
    name: 'virtio-mmio', base, size: VIRTIO_MMIO_REGION_SIZE, minAccessSize: 1, maxAccessSize: 4,
    read: (off, size) => virtioMmioRead(proxy, off, size),
    write: (off, size, value) => virtioMmioWrite(proxy, off, size, value),
  };
  return { proxy, region };
}

/** Plug `dev` into an empty transport. @qemu virtio_mmio_bus device plug */
export function virtioMmioPlug(p: VirtioMmioProxy, dev: VirtioDevice): void {
  assert(p.dev === null, `virtio-mmio transport ${p.index} already holds a device`);
  assert(dev.queueSizes.length > 0, `${dev.typeName} has no queues`);
  p.dev = dev;
  p.s.vqs = dev.queueSizes.map(() => virtQueueStateCreate());
  p.s.regs = dev.queueSizes.map(regsCreate);
  virtioMmioReset(p);
}

/** The next transport `-device` takes: QEMU's bus list is newest first, so the highest free one. */
export function virtioMmioFreeTransport(proxies: readonly VirtioMmioProxy[]): VirtioMmioProxy | null {
  for (let i = proxies.length - 1; i >= 0; i--) if (proxies[i]!.dev === null) return proxies[i]!;
  return null;
}
