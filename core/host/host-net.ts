// Real TCP and unix sockets (node:net) behind the NetProvider interface, for live mode. Every
// accepted connection, received chunk, hang-up and "writable again" enters the kernel through
// `deliver` (hostInputArrived + wake). Flow control: a connection's socket is paused once the
// bytes the kernel holds unread (delivered-but-not-applied plus the VirtualFd's inbound queue)
// reach `pauseHighBytes`, and resumed at `resumeLowBytes`: nothing is lost and memory is
// bounded by pauseHighBytes plus one chunk. Full 64 KiB reads are delivered together at the end
// of Node's poll phase (one main-loop iteration for a burst). Writes are accepted up to
// `writeHighBytes` of Node-side buffering (`writeHighDonatedBytes` for donated bytes, which go
// to Node as views, without a copy); beyond that the VirtualFd turns unwritable until 'drain'.

import * as fs from 'node:fs';
import * as net from 'node:net';
import {
  type HostInput, type LoopMachine, type VirtualFd, vfdClose, vfdOpen,
} from '../loop/index.ts';
import { errnoCode, strerror } from './errno.ts';
import {
  type NetConnInfo, type NetConnector, type NetListener, type NetProvider, type SocketAddress,
  hostWriteIsDonated,
} from './types.ts';
import { hostStreamWrite } from './stream-write.ts';

export interface HostNetOptions {
  pauseHighBytes?: number;
  resumeLowBytes?: number;
  writeHighBytes?: number;
  /** The same for donated bytes (hostWriteDonate: a migration stream), which cost no copy. */
  writeHighDonatedBytes?: number;
}

/** Counters for tests and diagnostics. */
export interface HostNetStats {
  pauses: number;
  resumes: number;
  /** Most bytes the kernel side ever held unread for one connection. */
  maxHeldBytes: number;
}

export interface HostNet extends NetProvider {
  readonly kind: 'host';
  stats: HostNetStats;
  /** Close every listener and connection (machine teardown). */
  closeAll(): void;
  /** Send the chardev writes held since the last flush (the live driver calls it). */
  flushWrites(): void;
}

interface Conn {
  socket: net.Socket;
  fd: VirtualFd;
  info: NetConnInfo;
}

function inetAddr(host: string | undefined, port: number | undefined): SocketAddress {
  return { type: 'inet', host: host ?? '', port: String(port ?? 0) };
}

function unixAddr(path: string): SocketAddress {
  return { type: 'unix', path, abstract: false, tight: true };
}

/** Both ends of a TCP connection. */
function socketInfo(s: net.Socket): NetConnInfo {
  const local = inetAddr(s.localAddress, s.localPort);
  return { local, peer: inetAddr(s.remoteAddress, s.remotePort) };
}

/** The path Node takes for a unix address (abstract names start with NUL). */
function unixPath(a: Extract<SocketAddress, { type: 'unix' }>): string {
  return a.abstract ? `\0${a.path}` : a.path;
}

/** QEMU's bind/listen error text. @qemu util/qemu-sockets.c inet_listen_saddr, unix_listen_saddr */
function listenError(addr: SocketAddress, err: unknown): string {
  const code = errnoCode(err);
  if (addr.type === 'unix') return `Failed to bind socket to ${addr.path}: ${strerror(code)}`;
  if (addr.type === 'inet') {
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      return `address resolution failed for ${addr.host}:${addr.port}: Name or service not known`;
    }
    if (code === 'EADDRINUSE') return `Failed to find an available port: ${strerror(code)}`;
  }
  return `Failed to bind socket: ${strerror(code)}`;
}

/** @qemu util/qemu-sockets.c inet_connect_addr, unix_connect_saddr */
function connectError(addr: SocketAddress, err: unknown): string {
  const code = errnoCode(err);
  if (addr.type === 'unix') return `Failed to connect to '${addr.path}': ${strerror(code)}`;
  if (addr.type === 'inet') {
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      return `address resolution failed for ${addr.host}:${addr.port}: Name or service not known`;
    }
    return `Failed to connect to '${addr.host}:${addr.port}': ${strerror(code)}`;
  }
  return `Failed to connect: ${strerror(code)}`;
}

/** What the socket adapters of one machine share. */
interface HostNetCtx {
  m: LoopMachine;
  deliver: (i: HostInput) => void;
  high: number;
  low: number;
  writeHigh: number;
  writeHighDonated: number;
  stats: HostNetStats;
  conns: Map<number, Conn>;
  servers: Set<net.Server>;
  /** Chardev writes held since the last flush, per socket. */
  held: Map<net.Socket, Held>;
}

/** Small chardev writes held for one socket: bytes[0, len) leave in one write at the flush. */
interface Held {
  bytes: Uint8Array;
  len: number;
}

/** Writes up to this long are held (a readline echo, a monitor's reply); longer ones go at once. */
const HOLD_MAX_BYTES = 16 * 1024;

/** Send what `socket` holds, in one write (of the held bytes themselves: they are not reused). */
function hostHeldFlush(ctx: HostNetCtx, socket: net.Socket, h: Held): void {
  ctx.held.delete(socket);
  if (h.len > 0 && !socket.destroyed && socket.writable) socket.write(Buffer.from(h.bytes.buffer, h.bytes.byteOffset, h.len));
}

/** Send the chardev writes held since the last flush. */
function hostNetFlush(ctx: HostNetCtx): void {
  if (ctx.held.size === 0) return;
  for (const [socket, h] of ctx.held) hostHeldFlush(ctx, socket, h);
}

/** A read this long (Node's read size) is held briefly to be delivered with the ones after it. */
const BATCH_READ_BYTES = 64 * 1024;

/**
 * The VirtualFd write of a connection: Node-side buffering up to writeHigh, then unwritable.
 * A readline monitor echoes each byte of a command in its own write, one per iteration, as QEMU
 * does: small writes are held (copied into the socket's held bytes) until the driver flushes
 * (bin/live.ts: once an iteration's main-loop part left no input to read and no BH to run, before
 * its vCPU turn) or awaits (next tick), so a command's echo, reply and prompt leave in one write
 * system call. The bytes
 * and their order are unchanged: a write that is not held first sends what is held.
 */
function hostConnWrite(ctx: HostNetCtx, socket: net.Socket, fd: VirtualFd, d: Uint8Array): number {
  if (socket.destroyed || !socket.writable) return -1;
  // Donated bytes (a migration stream) are never held: hostStreamWrite hands them over as views.
  const donated = hostWriteIsDonated(d);
  let h = ctx.held.get(socket);
  if (!donated && d.length <= HOLD_MAX_BYTES && socket.writableLength < ctx.writeHigh) {
    if (h === undefined) {
      h = { bytes: new Uint8Array(Math.max(256, d.length)), len: 0 };
      ctx.held.set(socket, h);
      if (ctx.held.size === 1) process.nextTick(() => hostNetFlush(ctx));
    }
    if (h.len + d.length <= HOLD_MAX_BYTES) {
      if (h.len + d.length > h.bytes.length) {
        const grown = new Uint8Array(Math.min(HOLD_MAX_BYTES, 2 * (h.len + d.length)));
        grown.set(h.bytes.subarray(0, h.len));
        h.bytes = grown;
      }
      h.bytes.set(d, h.len);
      h.len += d.length;
      return d.length;
    }
  }
  if (h !== undefined) hostHeldFlush(ctx, socket, h);
  return hostStreamWrite(socket, fd, d, ctx.writeHigh, ctx.writeHighDonated);
}

/** Wrap a connected socket in a VirtualFd wired to the boundary, with pause/resume. */
function hostWrapConn(
  ctx: HostNetCtx, socket: net.Socket, name: string, info: NetConnInfo,
): VirtualFd {
  const { stats } = ctx;
  let arrivedPending = 0;
  let lastInbound = 0;
  let paused = false;
  let hupSent = false;
  const write = (d: Uint8Array): number => hostConnWrite(ctx, socket, fd, d);
  const fd: VirtualFd = vfdOpen(ctx.m.fdt, name, 'stream', write);
  // Full reads (a bulk transfer: more is likely in the same poll phase) are delivered together
  // once Node has run that phase's callbacks, so one main-loop iteration takes them all; short
  // reads, and anything after held ones, go in order. A hang-up comes after held data.
  let batch: Uint8Array[] = [];
  let flushScheduled = false;
  const flushHeld = (): void => {
    flushScheduled = false;
    const list = batch;
    batch = [];
    for (const data of list) ctx.deliver({ kind: 'data', fd: fd.id, data });
  };
  const sendHup = (): void => {
    if (hupSent) return;
    hupSent = true;
    flushHeld();
    ctx.deliver({ kind: 'hup', fd: fd.id });
  };
  socket.on('data', (chunk: Buffer) => {
    arrivedPending += chunk.length;
    const data = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
    if (chunk.length >= BATCH_READ_BYTES || batch.length > 0) {
      batch.push(data);
      if (!flushScheduled) {
        flushScheduled = true;
        setImmediate(flushHeld);
      }
    } else {
      ctx.deliver({ kind: 'data', fd: fd.id, data });
    }
    const held = arrivedPending + fd.inboundBytes;
    if (held > stats.maxHeldBytes) stats.maxHeldBytes = held;
    if (!paused && held >= ctx.high) {
      paused = true;
      stats.pauses++;
      socket.pause();
    }
  });
  socket.on('end', sendHup);
  socket.on('close', sendHup);
  socket.on('error', () => {}); // 'close' follows and reports the hang-up
  socket.on('drain', () => ctx.deliver({ kind: 'writable', fd: fd.id, writable: true }));
  fd.onInboundChange = (f) => {
    const delta = f.inboundBytes - lastInbound;
    lastInbound = f.inboundBytes;
    if (delta > 0) arrivedPending = Math.max(0, arrivedPending - delta);
    if (paused && arrivedPending + f.inboundBytes <= ctx.low) {
      paused = false;
      stats.resumes++;
      socket.resume();
    }
  };
  fd.onClose = () => {
    ctx.conns.delete(fd.id);
    const h = ctx.held.get(socket);
    if (h !== undefined) hostHeldFlush(ctx, socket, h);
    // Flush what was written, then close; unread input is discarded (the kernel closed).
    socket.end(() => socket.destroy());
    socket.resume();
  };
  ctx.conns.set(fd.id, { socket, fd, info });
  return fd;
}

/** Bind and listen; accepted connections arrive as `accept` inputs. */
function hostListen(
  ctx: HostNetCtx, addr: SocketAddress, backlog: number, name: string,
): NetListener {
  const { m } = ctx;
  const lfd = vfdOpen(m.fdt, name, 'listener');
  // Half-open, as QEMU's sockets are: a peer that shuts down its sending side (socat at the end
  // of its input) still gets the replies to what it sent; detvm ends its side when the chardev
  // closes the connection.
  const server = net.createServer({ allowHalfOpen: true });
  ctx.servers.add(server);
  let seq = 0;
  const l: NetListener = {
    fd: lfd, status: 'pending', error: null, local: null, onSettled: null,
    close: () => {
      ctx.servers.delete(server);
      server.close();
      if (addr.type === 'unix' && !addr.abstract && l.status === 'listening') {
        try { fs.unlinkSync(addr.path); } catch { /* already gone */ }
      }
      vfdClose(m.fdt, lfd);
    },
  };
  server.on('connection', (socket) => {
    if (lfd.closed) {
      socket.destroy();
      return;
    }
    const info: NetConnInfo = addr.type === 'unix'
      ? { local: addr, peer: addr }
      : socketInfo(socket);
    const cfd = hostWrapConn(ctx, socket, `${name}-conn${seq++}`, info);
    ctx.deliver({ kind: 'accept', fd: lfd.id, conn: cfd.id });
  });
  server.on('error', (err) => {
    if (l.status !== 'pending') return;
    l.status = 'failed';
    l.error = listenError(addr, err);
    ctx.servers.delete(server);
    l.onSettled?.(l);
  });
  server.on('listening', () => {
    const a = server.address();
    l.status = 'listening';
    l.local = typeof a === 'object' && a !== null ? inetAddr(a.address, a.port) : addr;
    l.onSettled?.(l);
  });
  if (addr.type === 'inet') {
    const host = addr.host === '' ? undefined : addr.host;
    server.listen({ host, port: Number(addr.port), backlog });
  } else if (addr.type === 'unix') {
    if (!addr.abstract) {
      try { fs.unlinkSync(addr.path); } catch { /* QEMU ignores ENOENT */ }
    }
    server.listen({ path: unixPath(addr), backlog });
  } else {
    l.status = 'failed';
    l.error = "'fd' socket addresses are not supported by detvm";
  }
  return l;
}

/** Connect in the background; the result arrives as `accept` (or `hup`) on the connector. */
function hostConnect(ctx: HostNetCtx, addr: SocketAddress, name: string): NetConnector {
  const { m } = ctx;
  const cfd = vfdOpen(m.fdt, `${name}-connect`, 'listener');
  let socket: net.Socket | null = null;
  const c: NetConnector = {
    fd: cfd, status: 'pending', error: null,
    cancel: () => {
      socket?.destroy();
      vfdClose(m.fdt, cfd);
    },
  };
  if (addr.type === 'fd') {
    c.status = 'failed';
    c.error = "'fd' socket addresses are not supported by detvm";
    ctx.deliver({ kind: 'hup', fd: cfd.id });
    return c;
  }
  const s = addr.type === 'inet'
    ? net.connect({ host: addr.host, port: Number(addr.port), allowHalfOpen: true })
    : net.connect({ path: unixPath(addr), allowHalfOpen: true });
  socket = s;
  s.once('connect', () => {
    if (cfd.closed) {
      s.destroy();
      return;
    }
    c.status = 'connected';
    const info: NetConnInfo = addr.type === 'unix'
      ? { local: addr, peer: unixAddr(addr.path) }
      : socketInfo(s);
    const conn = hostWrapConn(ctx, s, name, info);
    ctx.deliver({ kind: 'accept', fd: cfd.id, conn: conn.id });
  });
  s.once('error', (err) => {
    if (c.status !== 'pending') return;
    c.status = 'failed';
    c.error = connectError(addr, err);
    ctx.deliver({ kind: 'hup', fd: cfd.id });
  });
  return c;
}

/** A NetProvider on node:net. Inputs go through `deliver`, which must wake the live driver. */
export function hostNetCreate(
  m: LoopMachine, deliver: (i: HostInput) => void, opts: HostNetOptions = {},
): HostNet {
  const ctx: HostNetCtx = {
    m, deliver,
    high: opts.pauseHighBytes ?? 4 << 20,
    low: opts.resumeLowBytes ?? 1 << 20,
    writeHigh: opts.writeHighBytes ?? 256 * 1024,
    writeHighDonated: opts.writeHighDonatedBytes ?? 1 << 20,
    stats: { pauses: 0, resumes: 0, maxHeldBytes: 0 },
    conns: new Map(),
    servers: new Set(),
    held: new Map(),
  };
  return {
    kind: 'host',
    stats: ctx.stats,
    listen: (addr, backlog, name) => hostListen(ctx, addr, backlog, name),
    connect: (addr, name) => hostConnect(ctx, addr, name),
    connInfo: (id) => ctx.conns.get(id)?.info ?? null,
    flushWrites: () => hostNetFlush(ctx),
    setNodelay: (id, on) => {
      ctx.conns.get(id)?.socket.setNoDelay(on);
    },
    closeAll: () => {
      hostNetFlush(ctx);
      for (const s of ctx.servers) s.close();
      ctx.servers.clear();
      for (const c of ctx.conns.values()) c.socket.destroy();
      ctx.conns.clear();
    },
  };
}
