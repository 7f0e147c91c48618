// Virtual file descriptors and the host input boundary (DESIGN.md §6). Every byte, connection
// and hang-up from outside enters the kernel here, in the poll phase of an iteration: from an
// in-memory peer at a chosen virtual time (tests, virtual mode), from core/host/ adapters (live
// mode), or from a replay log. Each delivery is offered to `inputHooks` (record mode logs it)
// before it changes a VirtualFd. Invariants: inbound bytes are consumed in arrival order; a
// hang-up becomes visible only after the bytes that arrived before it are read.

import { assert, assertNs } from '../util/index.ts';

export const G_IO_IN = 1;
export const G_IO_OUT = 4;
export const G_IO_ERR = 8;
export const G_IO_HUP = 16;

/** A kernel-side descriptor: a connection, a listener or a stream (stdio, file). */
export interface VirtualFd {
  id: number;
  name: string;
  kind: 'stream' | 'listener';
  /** Bytes received and not yet read, oldest first. */
  inbound: Uint8Array[];
  inboundBytes: number;
  /** The peer hung up (after the bytes in `inbound`). */
  hup: boolean;
  /** Listener: ids of accepted connections not yet taken, oldest first. */
  accepts: number[];
  /** Whether a write would be accepted now (output back-pressure). */
  writable: boolean;
  closed: boolean;
  /** Where written bytes go (host socket, in-memory peer). Returns bytes accepted. */
  write: (data: Uint8Array) => number;
  /** Tell the host side how many bytes the kernel holds unread (for pausing a socket). */
  onInboundChange: ((fd: VirtualFd) => void) | null;
  /** Called when the kernel closes the descriptor. */
  onClose: ((fd: VirtualFd) => void) | null;
}

/** One input from the outside world. */
export type HostInput =
  | { kind: 'data'; fd: number; data: Uint8Array }
  | { kind: 'hup'; fd: number }
  | { kind: 'accept'; fd: number; conn: number }
  | { kind: 'writable'; fd: number; writable: boolean };

interface Scheduled {
  atNs: number;
  seq: number;
  input: HostInput;
}

export interface FdTable {
  fds: Map<number, VirtualFd>;
  nextId: number;
  /** Inputs scheduled at virtual times (in-memory peers), sorted by (atNs, seq). */
  scheduled: Scheduled[];
  nextSeq: number;
  /** Inputs that have arrived from the host and wait for the next poll (live mode). */
  arrived: HostInput[];
  /** Observers of every delivered input, in order (the record log subscribes). */
  inputHooks: ((input: HostInput) => void)[];
  /** When set (replay), real host inputs are dropped: the log is the only source. */
  ignoreHost: boolean;
  /** Observers of every input arriving from the host (hostInputArrived), before it is queued. */
  arriveHooks: ((input: HostInput) => void)[];
  /** Observers of every input scheduled at a virtual time (hostInputAt), before it is queued. */
  scheduleHooks: ((atNs: number, input: HostInput) => void)[];
  /** Observers of every descriptor opened (vfdOpen), once it is in the table. */
  openHooks: ((fd: VirtualFd) => void)[];
}

export function fdTableCreate(): FdTable {
  return {
    fds: new Map(), nextId: 3, scheduled: [], nextSeq: 0, arrived: [], inputHooks: [], ignoreHost: false,
    arriveHooks: [], scheduleHooks: [], openHooks: [],
  };
}

/** Open a descriptor. `write` receives what the kernel writes to it. */
export function vfdOpen(t: FdTable, name: string, kind: VirtualFd['kind'], write: (d: Uint8Array) => number = (d) => d.length): VirtualFd {
  const fd: VirtualFd = {
    id: t.nextId++, name, kind, inbound: [], inboundBytes: 0, hup: false, accepts: [], writable: true,
    closed: false, write, onInboundChange: null, onClose: null,
  };
  t.fds.set(fd.id, fd);
  for (const h of t.openHooks) h(fd);
  return fd;
}

/** Close from the kernel side: no more input is delivered to it. */
export function vfdClose(t: FdTable, fd: VirtualFd): void {
  if (fd.closed) return;
  fd.closed = true;
  fd.inbound = [];
  fd.inboundBytes = 0;
  t.fds.delete(fd.id);
  fd.onClose?.(fd);
}

/** Poll conditions currently true for `fd` (G_IO_IN / G_IO_HUP / G_IO_OUT). */
export function vfdRevents(fd: VirtualFd): number {
  let ev = 0;
  if (fd.inboundBytes > 0 || fd.accepts.length > 0) ev |= G_IO_IN;
  else if (fd.hup) ev |= G_IO_HUP;
  if (fd.writable && !fd.hup) ev |= G_IO_OUT;
  return ev;
}

/** Read up to `max` bytes (one read(2)); empty when nothing is buffered. */
export function vfdRead(fd: VirtualFd, max: number): Uint8Array {
  if (!(Number.isInteger(max) && max >= 0)) assert(false, `vfdRead: bad length ${max}`);
  if (fd.inboundBytes === 0 || max === 0) return new Uint8Array(0);
  const first = fd.inbound[0]!;
  let out: Uint8Array;
  if (first.length <= max) {
    fd.inbound.shift();
    out = first;
  } else {
    out = first.subarray(0, max);
    fd.inbound[0] = first.subarray(max);
  }
  fd.inboundBytes -= out.length;
  fd.onInboundChange?.(fd);
  return out;
}

/** Take the oldest pending connection of a listener, or null. */
export function vfdAccept(fd: VirtualFd): number | null {
  return fd.accepts.shift() ?? null;
}

function apply(t: FdTable, input: HostInput): void {
  const fd = t.fds.get(input.fd);
  if (!fd || fd.closed) return; // the kernel closed it meanwhile: the input is moot
  for (const h of t.inputHooks) h(input);
  switch (input.kind) {
    case 'data':
      if (input.data.length === 0) return;
      fd.inbound.push(input.data);
      fd.inboundBytes += input.data.length;
      fd.onInboundChange?.(fd);
      return;
    case 'hup':
      fd.hup = true;
      return;
    case 'accept':
      fd.accepts.push(input.conn);
      return;
    case 'writable':
      fd.writable = input.writable;
      return;
  }
}

/** Schedule an input at virtual time `atNs` (in-memory peers, tests). */
export function hostInputAt(t: FdTable, atNs: number, input: HostInput): void {
  assertNs(atNs, 'host input time');
  for (const h of t.scheduleHooks) h(atNs, input);
  const s: Scheduled = { atNs, seq: t.nextSeq++, input };
  let i = t.scheduled.length;
  while (i > 0 && t.scheduled[i - 1]!.atNs > atNs) i--;
  t.scheduled.splice(i, 0, s);
}

/** An input arrived from the real host (live mode); it is applied at the next poll. */
export function hostInputArrived(t: FdTable, input: HostInput): void {
  if (t.ignoreHost) return;
  for (const h of t.arriveHooks) h(input);
  t.arrived.push(input);
}

/**
 * Queue an input for the next poll as if it had arrived from the host, even when `ignoreHost`
 * is set: the replay log re-creates host arrivals through here.
 */
export function hostInputQueue(t: FdTable, input: HostInput): void {
  t.arrived.push(input);
}

/** Time of the next scheduled input, or -1. */
export function hostNextInputNs(t: FdTable): number {
  return t.scheduled.length > 0 ? t.scheduled[0]!.atNs : -1;
}

/** Apply every input due at `nowNs` and everything that arrived from the host. Returns the count. */
export function hostDeliverDue(t: FdTable, nowNs: number): number {
  let n = 0;
  while (t.scheduled.length > 0 && t.scheduled[0]!.atNs <= nowNs) {
    apply(t, t.scheduled.shift()!.input);
    n++;
  }
  const arrived = t.arrived;
  if (arrived.length > 0) {
    t.arrived = [];
    for (const input of arrived) apply(t, input);
    n += arrived.length;
  }
  return n;
}

/** Apply one input now (replay substitutes logged inputs through here). */
export function hostInputApply(t: FdTable, input: HostInput): void {
  apply(t, input);
}
