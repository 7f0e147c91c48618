// In-memory peers: the other end of a socket chardev's connection, driven by a test or a
// library user at chosen virtual times. A peer connects to a chardev's listener (or listens for
// a client chardev), sends bytes and hangs up through the input boundary (hostInputAt), and
// collects what the kernel writes. A finite `windowBytes` models a slow reader: once that many
// bytes are unread the kernel's writes come back short (EAGAIN) until memoryPeerRead frees room.

import type { NetConnInfo, SocketAddress } from '../core/host/index.ts';
import { type LoopMachine, type VirtualFd, hostInputAt, vfdOpen } from '../core/loop/index.ts';
import { chardevIo } from './chardev-io.ts';
import {
  type MemoryNet, memoryClientAddr, memoryConnectError, memoryDeliver, memoryNetBind, memoryNetKey,
  memoryNetLookup,
} from './memory-net.ts';
import { socketAddressParse } from './socket-address.ts';

export interface MemoryPeer {
  name: string;
  m: LoopMachine;
  /** The kernel-side end of the connection. */
  fd: VirtualFd;
  /** Addresses as the kernel end sees them (local: the chardev's side). */
  info: NetConnInfo;
  received: Uint8Array[];
  receivedBytes: number;
  /** Unread bytes the peer's socket holds before the kernel's writes block (Infinity: never). */
  windowBytes: number;
  consumedBytes: number;
  /** Scheduled reads, oldest first. */
  drains: { atNs: number; bytes: number }[];
  /** Virtual time at which the peer closes its side, or null. */
  closeAtNs: number | null;
  /** The kernel closed its end (disconnect). */
  kernelClosed: boolean;
}

export interface MemoryPeerOptions {
  /** When the connection (or the bytes, or the close) happens; default: now. */
  atNs?: number;
  windowBytes?: number;
}

function memoryNetOf(m: LoopMachine): MemoryNet {
  const net = chardevIo(m).net;
  if (net.kind !== 'memory') {
    throw new Error('memory peers need the in-memory network (the machine uses real sockets)');
  }
  return net as MemoryNet;
}

function toAddr(address: string | SocketAddress): SocketAddress | string {
  return typeof address === 'string' ? socketAddressParse(address) : address;
}

function applyDrains(p: MemoryPeer, now: number): void {
  while (p.drains.length > 0 && p.drains[0]!.atNs <= now) {
    const d = p.drains.shift()!;
    p.consumedBytes = Math.min(p.receivedBytes, p.consumedBytes + d.bytes);
  }
}

/** Make `fd` the kernel end of a peer: the kernel's writes land in `received`. */
function attachPeer(
  m: LoopMachine, net: MemoryNet, fd: VirtualFd, info: NetConnInfo, name: string,
  windowBytes: number,
): MemoryPeer {
  const p: MemoryPeer = {
    name, m, fd, info, received: [], receivedBytes: 0, windowBytes, consumedBytes: 0, drains: [],
    closeAtNs: null, kernelClosed: false,
  };
  fd.write = (d) => {
    const now = m.clocks.simNs;
    if (p.closeAtNs !== null && now >= p.closeAtNs) return -1; // EPIPE: the peer is gone
    applyDrains(p, now);
    const space = p.windowBytes - (p.receivedBytes - p.consumedBytes);
    if (space <= 0) {
      fd.writable = false;
      return 0;
    }
    const n = Math.min(space, d.length);
    p.received.push(d.slice(0, n));
    p.receivedBytes += n;
    if (n < d.length) fd.writable = false;
    return n;
  };
  fd.onClose = () => {
    p.kernelClosed = true;
    net.ends.delete(fd.id);
  };
  net.ends.set(fd.id, info);
  return p;
}

/**
 * Connect a peer to whoever listens on `address` ("127.0.0.1:4444", "unix:/path"). The
 * listener sees the connection at `opts.atNs` (default now). Fails with QEMU's connect error
 * text when nobody listens.
 */
export function memoryPeerConnect(
  m: LoopMachine, address: string | SocketAddress, opts: MemoryPeerOptions = {},
): { ok: true; peer: MemoryPeer } | { ok: false; error: string } {
  const net = memoryNetOf(m);
  const addr = toAddr(address);
  if (typeof addr === 'string') return { ok: false, error: addr };
  const entry = memoryNetLookup(net, addr);
  if (!entry || entry.kind !== 'kernel' || entry.listener.fd.closed) {
    return { ok: false, error: memoryConnectError(addr) };
  }
  const local = entry.local.type === 'inet' && ['0.0.0.0', '::', ''].includes(entry.local.host)
    ? { ...entry.local, host: '127.0.0.1' } : entry.local;
  const info: NetConnInfo = { local, peer: memoryClientAddr(net, addr) };
  const name = `peer-${net.nextPort}`;
  const fd = vfdOpen(m.fdt, name, 'stream');
  const peer = attachPeer(m, net, fd, info, name, opts.windowBytes ?? Infinity);
  const at = opts.atNs ?? m.clocks.simNs;
  hostInputAt(m.fdt, at, { kind: 'accept', fd: entry.listener.fd.id, conn: fd.id });
  return { ok: true, peer };
}

/** A peer-side server for client chardevs: each kernel connect becomes a peer in `peers`. */
export interface MemoryPeerServer {
  local: SocketAddress;
  peers: MemoryPeer[];
  close(): void;
}

/** Listen on `address` for client chardevs. */
export function memoryPeerListen(
  m: LoopMachine, address: string | SocketAddress, opts: MemoryPeerOptions = {},
): { ok: true; server: MemoryPeerServer } | { ok: false; error: string } {
  const net = memoryNetOf(m);
  const addr = toAddr(address);
  if (typeof addr === 'string') return { ok: false, error: addr };
  const bound = memoryNetBind(net, addr);
  if (typeof bound === 'string') return { ok: false, error: bound };
  const key = memoryNetKey(bound);
  const close = (): void => {
    net.listeners.delete(key);
  };
  const server: MemoryPeerServer = { local: bound, peers: [], close };
  net.listeners.set(key, {
    kind: 'peer', local: bound,
    onConnect: (end, info) => {
      const window = opts.windowBytes ?? Infinity;
      server.peers.push(attachPeer(m, net, end, info, `peer-${end.id}`, window));
    },
  });
  return { ok: true, server };
}

const encoder = new TextEncoder();

/** Send bytes (or a UTF-8 string) to the kernel, arriving at `atNs` (default now). */
export function memoryPeerSend(p: MemoryPeer, data: Uint8Array | string, atNs?: number): void {
  const bytes = typeof data === 'string' ? encoder.encode(data) : data.slice();
  hostInputAt(p.m.fdt, atNs ?? p.m.clocks.simNs, { kind: 'data', fd: p.fd.id, data: bytes });
}

/** Close the peer's side at `atNs` (default now): the kernel reads EOF after pending bytes. */
export function memoryPeerClose(p: MemoryPeer, atNs?: number): void {
  const at = atNs ?? p.m.clocks.simNs;
  p.closeAtNs = at;
  hostInputAt(p.m.fdt, at, { kind: 'hup', fd: p.fd.id });
}

/** The peer reads up to `bytes` (default: all) at `atNs`, freeing window room; wakes the writer. */
export function memoryPeerRead(p: MemoryPeer, atNs?: number, bytes = Infinity): void {
  const at = atNs ?? p.m.clocks.simNs;
  p.drains.push({ atNs: at, bytes });
  hostInputAt(p.m.fdt, at, { kind: 'writable', fd: p.fd.id, writable: true });
}

/** Everything the kernel wrote to the peer so far. */
export function memoryPeerBytes(p: MemoryPeer): Uint8Array {
  // A plain Uint8Array, not Buffer.concat's Buffer, whose slice() would be a view.
  const out = new Uint8Array(p.receivedBytes);
  let off = 0;
  for (const c of p.received) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** memoryPeerBytes as a binary string (one char per byte, 0xFF stays \xff). */
export function memoryPeerText(p: MemoryPeer): string {
  return Buffer.concat(p.received, p.receivedBytes).toString('latin1');
}

export { memoryDeliver };
