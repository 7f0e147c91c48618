// Split virtqueues (hw/virtio/virtio.c, QEMU 7.2, the parts a virtio 1.x device on
// virtio-mmio needs): descriptor chains popped from the available ring (direct and indirect
// descriptors), scatter-gather copies between guest RAM and device buffers, used-ring pushes
// and the interrupt-suppression check. A queue's state is plain data (VirtQueueState); guest
// memory is reached through the address space. Guest mistakes never throw: they come back as
// QEMU's virtio_error texts and the caller marks the device broken.
// Invariants: 0 <= inuse <= num; lastAvailIdx and usedIdx are 16-bit counters.

import { type AddressSpace, MEMTX_OK, addressSpaceRead, addressSpaceWrite } from '../memory/index.ts';

/** Largest queue a driver may configure. @qemu VIRTQUEUE_MAX_SIZE */
export const VIRTQUEUE_MAX_SIZE = 1024;
export const VRING_DESC_F_NEXT = 1;
export const VRING_DESC_F_WRITE = 2;
export const VRING_DESC_F_INDIRECT = 4;
export const VRING_AVAIL_F_NO_INTERRUPT = 1;
const VRING_DESC_SIZE = 16;

/** One queue as the transport configured it, and the device's progress through it. */
export interface VirtQueueState {
  /** Ring size the driver chose (QueueNum). */
  num: number;
  /** QueueReady. */
  ready: boolean;
  descAddr: number;
  availAddr: number;
  usedAddr: number;
  /** Next available-ring slot the device reads. @qemu VirtQueue.last_avail_idx */
  lastAvailIdx: number;
  /** Next used-ring slot the device writes. @qemu VirtQueue.used_idx */
  usedIdx: number;
  /** Elements popped and not yet pushed back. */
  inuse: number;
}

/** A guest buffer: physical address and length. */
export interface VirtIOSg {
  addr: number;
  len: number;
}

/** A popped descriptor chain: device-readable buffers, then device-writable ones. */
export interface VirtQueueElement {
  index: number;
  outSg: VirtIOSg[];
  inSg: VirtIOSg[];
}

export function virtQueueStateCreate(): VirtQueueState {
  return { num: 0, ready: false, descAddr: 0, availAddr: 0, usedAddr: 0, lastAvailIdx: 0, usedIdx: 0, inuse: 0 };
}

/** Back to the state after a device reset. @qemu virtio_reset (per queue) */
export function virtQueueReset(vq: VirtQueueState, numDefault: number): void {
  vq.num = numDefault;
  vq.ready = false;
  vq.descAddr = 0;
  vq.availAddr = 0;
  vq.usedAddr = 0;
  vq.lastAvailIdx = 0;
  vq.usedIdx = 0;
  vq.inuse = 0;
}

/** Whether [addr, addr+len) lies in guest RAM (the only memory dma_memory_map maps). */
export function dmaRangeOk(as: AddressSpace, addr: number, len: number): boolean {
  return Number.isSafeInteger(addr) && addr >= as.ramBase && len >= 0 && addr + len <= as.ramBase + as.ramSize;
}

function lduw(as: AddressSpace, addr: number): number | null {
  const b = new Uint8Array(2);
  if (!dmaRangeOk(as, addr, 2) || addressSpaceRead(as, addr, b) !== MEMTX_OK) return null;
  return b[0]! | (b[1]! << 8);
}

function stw(as: AddressSpace, addr: number, v: number): boolean {
  return dmaRangeOk(as, addr, 2) && addressSpaceWrite(as, addr, Uint8Array.of(v & 0xff, (v >>> 8) & 0xff)) === MEMTX_OK;
}

/** avail->idx, or null when the ring is not in RAM. @qemu vring_avail_idx */
export function vringAvailIdx(as: AddressSpace, vq: VirtQueueState): number | null {
  return lduw(as, vq.availAddr + 2);
}

/** @qemu vring_avail_flags */
function vringAvailFlags(as: AddressSpace, vq: VirtQueueState): number {
  return lduw(as, vq.availAddr) ?? 0;
}

/** Whether the available ring has entries the device has not taken. @qemu virtio_queue_empty */
export function virtQueueEmpty(as: AddressSpace, vq: VirtQueueState): boolean {
  if (!vq.ready || vq.num === 0 || vq.descAddr === 0) return true;
  return vringAvailIdx(as, vq) === vq.lastAvailIdx;
}

interface Desc {
  addr: number;
  len: number;
  flags: number;
  next: number;
}

function readDesc(as: AddressSpace, table: number, i: number): Desc | null {
  const b = new Uint8Array(VRING_DESC_SIZE);
  const at = table + i * VRING_DESC_SIZE;
  if (!dmaRangeOk(as, at, VRING_DESC_SIZE) || addressSpaceRead(as, at, b) !== MEMTX_OK) return null;
  const dv = new DataView(b.buffer);
  const hi = dv.getUint32(4, true);
  // A 64-bit address beyond 4 GiB cannot be RAM on this board; make it fail the map.
  const addr = hi === 0 ? dv.getUint32(0, true) : Number.MAX_SAFE_INTEGER;
  return { addr, len: dv.getUint32(8, true), flags: dv.getUint16(12, true), next: dv.getUint16(14, true) };
}

/**
 * Walk one descriptor table from `head`, appending buffers to `elem`. `max` bounds the walk.
 * Returns null or QEMU's error text. @qemu virtqueue_split_pop (the descriptor loop)
 */
function walkChain(as: AddressSpace, table: number, max: number, head: number, elem: VirtQueueElement, indirect: boolean): string | null {
  let i = head;
  for (let n = 0; ; n++) {
    if (n >= max) return 'Looped descriptor';
    const d = readDesc(as, table, i);
    if (d === null) return 'virtio: bogus descriptor or out of resources';
    if (d.flags & VRING_DESC_F_INDIRECT) {
      if (indirect) return 'Nested indirect descriptor';
      if (d.len === 0 || d.len % VRING_DESC_SIZE !== 0) return `Invalid size for indirect buffer table`;
      if (elem.outSg.length + elem.inSg.length > 0) return 'Indirect descriptor in the middle of a chain';
      if (!dmaRangeOk(as, d.addr, d.len)) return 'Cannot map indirect buffer';
      return walkChain(as, d.addr, d.len / VRING_DESC_SIZE, 0, elem, true);
    }
    if (d.len === 0) return 'virtio: zero sized buffers are not allowed';
    if (!dmaRangeOk(as, d.addr, d.len)) return 'virtio: bogus descriptor or out of resources';
    if (d.flags & VRING_DESC_F_WRITE) {
      elem.inSg.push({ addr: d.addr, len: d.len });
    } else {
      if (elem.inSg.length > 0) return 'Incorrect order for descriptors';
      elem.outSg.push({ addr: d.addr, len: d.len });
    }
    if (!(d.flags & VRING_DESC_F_NEXT)) return null;
    if (d.next >= max) return `Desc next is ${d.next}`;
    i = d.next;
  }
}

/** What virtqueuePop found: an element, nothing, or a guest error (the device breaks). */
export type VirtQueuePop = { kind: 'elem'; elem: VirtQueueElement } | { kind: 'empty' } | { kind: 'error'; error: string };

/** Take the next available descriptor chain. @qemu hw/virtio/virtio.c virtqueue_split_pop */
export function virtqueuePop(as: AddressSpace, vq: VirtQueueState): VirtQueuePop {
  if (!vq.ready || vq.num === 0 || vq.descAddr === 0) return { kind: 'empty' };
  const availIdx = vringAvailIdx(as, vq);
  if (availIdx === null) return { kind: 'error', error: 'virtio: bogus descriptor or out of resources' };
  if (availIdx === vq.lastAvailIdx) return { kind: 'empty' };
  if (((availIdx - vq.lastAvailIdx) & 0xffff) > vq.num) {
    return { kind: 'error', error: `Guest moved used index from ${vq.lastAvailIdx} to ${availIdx}` };
  }
  if (vq.inuse >= vq.num) return { kind: 'error', error: 'Virtqueue size exceeded' };
  const head = lduw(as, vq.availAddr + 4 + 2 * (vq.lastAvailIdx % vq.num));
  if (head === null) return { kind: 'error', error: 'virtio: bogus descriptor or out of resources' };
  if (head >= vq.num) return { kind: 'error', error: `Guest says index ${head} is >= queue size ${vq.num}` };
  vq.lastAvailIdx = (vq.lastAvailIdx + 1) & 0xffff;
  const elem: VirtQueueElement = { index: head, outSg: [], inSg: [] };
  const err = walkChain(as, vq.descAddr, vq.num, head, elem, false);
  if (err !== null) return { kind: 'error', error: err };
  vq.inuse++;
  return { kind: 'elem', elem };
}

/**
 * Return `elem` to the driver with `len` bytes written, and publish the new used index.
 * @qemu virtqueue_push (virtqueue_fill + virtqueue_flush)
 */
export function virtqueuePush(as: AddressSpace, vq: VirtQueueState, elem: VirtQueueElement, len: number): void {
  const slot = vq.usedAddr + 4 + 8 * (vq.usedIdx % vq.num);
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, elem.index, true);
  dv.setUint32(4, len >>> 0, true);
  // A used ring outside RAM is the guest's problem: the write is dropped, as QEMU's is.
  if (dmaRangeOk(as, slot, 8)) addressSpaceWrite(as, slot, b);
  vq.usedIdx = (vq.usedIdx + 1) & 0xffff;
  stw(as, vq.usedAddr + 2, vq.usedIdx);
  vq.inuse--;
}

/** Whether to interrupt after a push (no EVENT_IDX: the avail flag decides). @qemu virtio_split_should_notify */
export function virtqueueShouldNotify(as: AddressSpace, vq: VirtQueueState): boolean {
  return (vringAvailFlags(as, vq) & VRING_AVAIL_F_NO_INTERRUPT) === 0;
}

/** Total bytes of a scatter-gather list. @qemu iov_size */
export function iovSize(sg: readonly VirtIOSg[]): number {
  let n = 0;
  for (const s of sg) n += s.len;
  return n;
}

/** Copy up to `out.length` bytes from the guest buffers, skipping `offset`. Returns bytes copied. @qemu iov_to_buf */
export function iovToBuf(as: AddressSpace, sg: readonly VirtIOSg[], offset: number, out: Uint8Array): number {
  let skip = offset;
  let done = 0;
  for (const s of sg) {
    if (done >= out.length) break;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    const n = Math.min(s.len - skip, out.length - done);
    addressSpaceRead(as, s.addr + skip, out.subarray(done, done + n));
    done += n;
    skip = 0;
  }
  return done;
}

/** Copy `data` into the guest buffers from `offset`. Returns bytes copied. @qemu iov_from_buf */
export function iovFromBuf(as: AddressSpace, sg: readonly VirtIOSg[], offset: number, data: Uint8Array): number {
  let skip = offset;
  let done = 0;
  for (const s of sg) {
    if (done >= data.length) break;
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    const n = Math.min(s.len - skip, data.length - done);
    addressSpaceWrite(as, s.addr + skip, data.subarray(done, done + n));
    done += n;
    skip = 0;
  }
  return done;
}

/** The first `bytes` of a list (a prefix view), for the data part of a request. */
export function iovHead(sg: readonly VirtIOSg[], bytes: number): VirtIOSg[] {
  const out: VirtIOSg[] = [];
  let left = bytes;
  for (const s of sg) {
    if (left <= 0) break;
    const n = Math.min(s.len, left);
    out.push({ addr: s.addr, len: n });
    left -= n;
  }
  return out;
}

/** The list without its first `bytes` (the header). @qemu iov_discard_front */
export function iovDiscardFront(sg: readonly VirtIOSg[], bytes: number): VirtIOSg[] {
  const out: VirtIOSg[] = [];
  let skip = bytes;
  for (const s of sg) {
    if (skip >= s.len) {
      skip -= s.len;
      continue;
    }
    out.push({ addr: s.addr + skip, len: s.len - skip });
    skip = 0;
  }
  return out;
}
