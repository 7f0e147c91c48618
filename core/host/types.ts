// The interfaces between chardev backends and whatever provides sockets, stdio and files: the
// real host (core/host/, live mode) or in-memory stand-ins (chardev/memory-*.ts, virtual mode
// and tests). This file imports nothing from node: kernel code may depend on it freely.
// Invariants: every byte, connection and hang-up a provider produces enters the kernel through
// the input boundary of core/loop/pollfd.ts (hostInputAt / hostInputArrived), never directly.

import type { VirtualFd } from '../loop/index.ts';

/** A socket address, as QAPI's SocketAddress (flat form). @qemu qapi/sockets.json */
export type SocketAddress =
  | { type: 'inet'; host: string; port: string; to?: number; ipv4?: boolean; ipv6?: boolean }
  | { type: 'unix'; path: string; abstract: boolean; tight: boolean }
  | { type: 'fd'; str: string };

/** Where a listener stands; `local` is the bound address once listening (port 0 resolved). */
export type NetListenerStatus = 'pending' | 'listening' | 'failed';

/**
 * A listening socket. Accepted connections arrive as `accept` inputs on `fd` (kind
 * 'listener'); the connection's own VirtualFd exists from the moment the host accepted it, so
 * bytes a client sends before the kernel takes the connection wait in its inbound queue (the
 * listen backlog).
 */
export interface NetListener {
  fd: VirtualFd;
  status: NetListenerStatus;
  /** QEMU's error text when `status` is 'failed' (e.g. "Failed to find an available port: ..."). */
  error: string | null;
  local: SocketAddress | null;
  /** Called once when the status leaves 'pending' (memory listeners settle immediately). */
  onSettled: ((l: NetListener) => void) | null;
  close(): void;
}

/**
 * An outgoing connection attempt. Success delivers an `accept` input on `fd` naming the new
 * connection; failure delivers a `hup` input on `fd` after setting `error`.
 */
export interface NetConnector {
  fd: VirtualFd;
  status: 'pending' | 'connected' | 'failed';
  error: string | null;
  cancel(): void;
}

/** Both ends of a connection, for the connected filename (`tcp:L <-> P`). */
export interface NetConnInfo {
  local: SocketAddress;
  peer: SocketAddress;
}

export type NetConnectResult = { ok: true; conn: VirtualFd } | { ok: false; error: string };

/** Sockets for the socket chardev. */
export interface NetProvider {
  readonly kind: 'memory' | 'host';
  /** Bind and listen (qio_net_listener_open_sync); the host settles asynchronously. */
  listen(addr: SocketAddress, backlog: number, name: string): NetListener;
  /** Start connecting in the background (tcp_chr_connect_client_async). */
  connect(addr: SocketAddress, name: string): NetConnector;
  /** Connect now (tcp_chr_connect_client_sync); absent when the provider cannot block. */
  connectSync?(addr: SocketAddress, name: string): NetConnectResult;
  connInfo(connFd: number): NetConnInfo | null;
  /** TCP_NODELAY on a connection (qio_channel_set_delay(ioc, !on)). */
  setNodelay(connFd: number, on: boolean): void;
}

/** The two descriptors of a stdio chardev and the terminal controls. */
export interface StdioEndpoints {
  in: VirtualFd;
  out: VirtualFd;
  /** @qemu chardev/char-stdio.c qemu_chr_set_echo_stdio */
  setEcho(echo: boolean): void;
  /** Restore the terminal and stop reading. Idempotent. */
  close(): void;
}

export type StdioSignal = 'SIGINT' | 'SIGQUIT';

export interface StdioOpenOptions {
  /** signal=on: the terminal's INTR/QUIT characters raise a signal instead of being input. */
  signal: boolean;
  onSignal: (sig: StdioSignal) => void;
}

export interface StdioProvider {
  open(opts: StdioOpenOptions): { ok: true; ends: StdioEndpoints } | { ok: false; error: string };
}

export type FileOpenResult = { ok: true; fd: VirtualFd } | { ok: false; error: string };

/** Files for the file chardev and logfile=. */
export interface FileProvider {
  /** Open for writing (O_WRONLY|O_CREAT, O_APPEND or O_TRUNC); writes are synchronous. */
  openOut(path: string, append: boolean): FileOpenResult;
  /** Open for reading: the contents arrive through the boundary, then a hang-up at EOF. */
  openIn(path: string): FileOpenResult;
}

/** Everything chardev backends need from the outside world. */
export interface ChardevIo {
  readonly kind: 'memory' | 'host';
  net: NetProvider;
  stdio: StdioProvider;
  files: FileProvider;
}

/**
 * Buffers whose writer gives them up when it writes them (migration streams): a host adapter
 * may hand a view of them to the OS without copying, and keep it until the write completes
 * (saying so with hostWriteKept). Every other write is copied, since its caller may reuse its
 * buffer once write() returns.
 */
const donatedBuffers = new WeakSet<ArrayBufferLike>();
/** Whether anything was ever donated: until then every write is known to be a plain one. */
let anyDonated = false;

/** Declare that `bytes` (and every view of its buffer) will never be changed again. */
export function hostWriteDonate(bytes: Uint8Array): void {
  donatedBuffers.add(bytes.buffer);
  anyDonated = true;
}

/** Whether the bytes of `d` may be kept by reference (see hostWriteDonate). */
export function hostWriteIsDonated(d: Uint8Array): boolean {
  return anyDonated && donatedBuffers.has(d.buffer);
}

let donatedKept = false;

/** A host adapter kept a reference to donated bytes it was handed (the OS has not taken them). */
export function hostWriteKept(): void {
  donatedKept = true;
}

/**
 * Whether an adapter kept donated bytes since the last call (then the writer must not reuse
 * them); resets. Donating writers ask after each write, to reuse their buffer when they can
 * (memory the process touched before costs far less than fresh memory).
 */
export function hostWriteTakeKept(): boolean {
  const k = donatedKept;
  donatedKept = false;
  return k;
}
