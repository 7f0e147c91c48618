// The socket chardev's connection life cycle (chardev/char-socket.c, 7.2): accept (one client at
// a time: the listener callback is removed while connected, so further clients wait in the
// backlog), telnet negotiation, connect (OPENED), flow-controlled reads (tcp_chr_read), writes,
// hang-up at lower priority than reads, and disconnect (CLOSED, listener re-armed, reconnect
// timer). Opening and client connects are in socket-open.ts / socket-client.ts.
// State transitions (tcp_chr_change_state):
//   disconnected -> connecting   accept / connect started
//   connecting   -> connected    tcp_chr_connect (after telnet negotiation if any)
//   any          -> disconnected tcp_chr_free_connection

import {
  type Chardev, type ChardevDriver, CHR_EVENT_BREAK, CHR_EVENT_CLOSED, CHR_EVENT_OPENED,
  CHR_READ_BUF_LEN, EAGAIN, EIO, chardevState, chardevWiring, chrAddFdWatch, chrWatchDropFd,
  ioAddWatchPoll, ioChannelSendFull, qemuChrBeCanWrite, qemuChrBeEvent, qemuChrBeWrite,
  removeFdInWatch, vfdAddWatch,
} from '../core/char/index.ts';
import type { NetConnector, NetListener, NetProvider, SocketAddress } from '../core/host/index.ts';
import {
  type LoopSource, type QEMUTimer, type VirtualFd, G_IO_HUP, G_IO_IN, G_IO_OUT, G_PRIORITY_DEFAULT,
  gSourceDestroy, timerDel, timerPending, vfdAccept, vfdClose, vfdRead,
} from '../core/loop/index.ts';
import { assert } from '../core/util/index.ts';
import { qemuChrComputeFilename, qemuChrSocketAddress } from './socket-address.ts';
import { qemuChrSocketRestartTimer } from './socket-client.ts';
import { TELNET_INIT, TN3270_INIT, tcpChrProcessIacBytes } from './socket-telnet.ts';

export type TcpChardevState = 'disconnected' | 'connecting' | 'connected';

/** Plain state of a socket chardev. @qemu chardev/char-socket.c SocketChardev */
export interface SocketChardevState {
  name: 'socket';
  state: TcpChardevState;
  /** The configured address; for a server, the bound local address once listening. */
  addr: SocketAddress;
  isListen: boolean;
  isTelnet: boolean;
  isTn3270: boolean;
  isWebsock: boolean;
  /** wait=on: QEMU blocks at creation until the first client connects. */
  isWaitconnect: boolean;
  doNodelay: boolean;
  /** Telnet IAC filter state (0: telnet off). */
  doTelnetopt: number;
  /** can_read at the last prepare. */
  maxSize: number;
  reconnectTimeMs: number;
  connectErrReported: boolean;
  /** Negotiation bytes not yet written, or null. */
  telnetInit: number[] | null;
  listenFd: number | null;
  connFd: number | null;
  /** The last listen/connect failure reported after creation (live mode), or null. */
  lastError: string | null;
}

/** Wiring of a socket chardev (sources, timer, provider handles). Never saved. */
export interface SocketChardevIo {
  net: NetProvider;
  listener: NetListener | null;
  /** tcp_chr_accept registered on the listener (qio_net_listener_set_client_func). */
  listenSource: LoopSource | null;
  conn: VirtualFd | null;
  hupSource: LoopSource | null;
  telnetSource: LoopSource | null;
  connector: NetConnector | null;
  connectSource: LoopSource | null;
  reconnectTimer: QEMUTimer | null;
  /** The live start-up helper reports listen/connect failures itself. */
  quiet: boolean;
}

export function sockState(chr: Chardev): SocketChardevState {
  return chardevState<SocketChardevState>(chr, 'socket');
}

export function sockIo(chr: Chardev): SocketChardevIo {
  return chardevWiring<SocketChardevIo>(chr, 'socket');
}

/** @qemu chardev/char-socket.c tcp_chr_change_state */
export function tcpChrChangeState(s: SocketChardevState, state: TcpChardevState): void {
  if (state === 'connecting') {
    assert(s.state === 'disconnected', `socket: connecting from ${s.state}`);
  }
  if (state === 'connected') assert(s.state === 'connecting', `socket: connected from ${s.state}`);
  s.state = state;
}

/** @qemu chardev/char-socket.c update_disconnected_filename */
export function updateDisconnectedFilename(chr: Chardev): void {
  chr.filename = qemuChrSocketAddress(sockState(chr), sockState(chr).addr, 'disconnected:');
}

/** 0 unless connected; else what the frontend takes (saved as maxSize). @qemu tcp_chr_read_poll */
export function tcpChrReadPoll(chr: Chardev): number {
  const s = sockState(chr);
  if (s.state !== 'connected') return 0;
  s.maxSize = qemuChrBeCanWrite(chr);
  return s.maxSize;
}

/**
 * Write to the peer. Not connected: -1 with EIO (the bytes are dropped). A send error other
 * than EAGAIN disconnects at once unless the frontend still reads (then the read side notices).
 * @qemu chardev/char-socket.c tcp_chr_write
 */
export function tcpChrWrite(chr: Chardev, buf: Uint8Array): number {
  const s = sockState(chr);
  const io = sockIo(chr);
  if (s.state !== 'connected' || !io.conn) {
    chr.errno = EIO;
    return -1;
  }
  const ret = ioChannelSendFull(chr, io.conn, buf);
  if (ret < 0 && chr.errno !== EAGAIN && tcpChrReadPoll(chr) <= 0) tcpChrDisconnect(chr);
  return ret;
}

/**
 * The read watch: one recv of at most min(4096, maxSize) bytes, the telnet filter, then
 * qemuChrBeWrite. EOF disconnects. Always keeps the watch. @qemu chardev/char-socket.c tcp_chr_read
 */
export function tcpChrRead(chr: Chardev): boolean {
  const s = sockState(chr);
  const io = sockIo(chr);
  if (s.state !== 'connected' || s.maxSize <= 0 || !io.conn) return true;
  const conn = io.conn;
  const data = vfdRead(conn, Math.min(CHR_READ_BUF_LEN, s.maxSize));
  if (conn.inboundBytes > 0) chr.m.loop.inputLeftover = true;
  if (data.length === 0) {
    if (conn.hup) tcpChrDisconnect(chr); // recv returned 0: the peer closed
    return true;
  }
  let buf = data;
  if (s.doTelnetopt) {
    buf = tcpChrProcessIacBytes(s, data, () => qemuChrBeEvent(chr, CHR_EVENT_BREAK));
  }
  if (buf.length > 0) qemuChrBeWrite(chr, buf);
  return true;
}

/** @qemu chardev/char-socket.c tcp_chr_hup */
function tcpChrHup(chr: Chardev): boolean {
  tcpChrDisconnect(chr);
  return false;
}

function removeHupSource(chr: Chardev, io: SocketChardevIo): void {
  if (io.hupSource) gSourceDestroy(chr.m.loop.sources, io.hupSource);
  io.hupSource = null;
}

function tcpChrTelnetDestroy(chr: Chardev, io: SocketChardevIo): void {
  if (io.telnetSource) gSourceDestroy(chr.m.loop.sources, io.telnetSource);
  io.telnetSource = null;
}

/** Close the connection and forget it. @qemu chardev/char-socket.c tcp_chr_free_connection */
export function tcpChrFreeConnection(chr: Chardev): void {
  const s = sockState(chr);
  const io = sockIo(chr);
  removeHupSource(chr, io);
  removeFdInWatch(chr);
  // QEMU leaves a pending telnet watch on the closed channel, where it never fires again.
  tcpChrTelnetDestroy(chr, io);
  s.telnetInit = null;
  if (io.conn) {
    chrWatchDropFd(chr.m, io.conn.id);
    vfdClose(chr.m.fdt, io.conn);
  }
  io.conn = null;
  s.connFd = null;
  chr.filename = '';
  tcpChrChangeState(s, 'disconnected');
}

/**
 * Drop the connection: CLOSED if it was connected, the listener re-armed, the reconnect timer
 * restarted. @qemu chardev/char-socket.c tcp_chr_disconnect_locked
 */
export function tcpChrDisconnect(chr: Chardev): void {
  const s = sockState(chr);
  const io = sockIo(chr);
  const emitClose = s.state === 'connected';
  tcpChrFreeConnection(chr);
  if (io.listener) tcpChrSetListenerFunc(chr, true);
  updateDisconnectedFilename(chr);
  if (emitClose) qemuChrBeEvent(chr, CHR_EVENT_CLOSED);
  if (s.reconnectTimeMs && !(io.reconnectTimer && timerPending(io.reconnectTimer))) {
    qemuChrSocketRestartTimer(chr);
  }
}

/** The read watch and the hang-up source (one priority lower). @qemu update_ioc_handlers */
function updateIocHandlers(chr: Chardev): void {
  const s = sockState(chr);
  const io = sockIo(chr);
  if (s.state !== 'connected' || !io.conn) return;
  removeFdInWatch(chr);
  const read = (): boolean => tcpChrRead(chr);
  chr.gsource = ioAddWatchPoll(chr, io.conn, () => tcpChrReadPoll(chr), read, 'tcp_chr_read');
  removeHupSource(chr, io);
  // Lower priority than the read watch: data that arrived before the hang-up is read first.
  io.hupSource = vfdAddWatch(
    chr.m, io.conn, G_IO_HUP, `chardev-hup-${chr.label}`, G_PRIORITY_DEFAULT + 1,
    () => tcpChrHup(chr), 'tcp_chr_hup', { chardev: chr.label },
  );
}

/** Connected: filename, state, watches, OPENED. @qemu chardev/char-socket.c tcp_chr_connect */
export function tcpChrConnect(chr: Chardev): void {
  const s = sockState(chr);
  const io = sockIo(chr);
  const info = io.conn ? io.net.connInfo(io.conn.id) : null;
  chr.filename = info ? qemuChrComputeFilename(s, info) : 'unknown';
  tcpChrChangeState(s, 'connected');
  updateIocHandlers(chr);
  qemuChrBeEvent(chr, CHR_EVENT_OPENED);
}

/** Write the pending negotiation bytes; connect once all are out. @qemu tcp_chr_telnet_init_io */
function tcpChrTelnetInitIo(chr: Chardev): boolean {
  const s = sockState(chr);
  const io = sockIo(chr);
  const init = s.telnetInit;
  const conn = io.conn;
  assert(init !== null && conn !== null, `socket '${chr.label}': telnet watch without negotiation`);
  const ret = conn.closed ? -1 : conn.writable ? conn.write(Uint8Array.from(init)) : 0;
  if (ret < 0) {
    s.telnetInit = null;
    io.telnetSource = null;
    tcpChrDisconnect(chr);
    return false;
  }
  init.splice(0, ret);
  if (init.length > 0) return true;
  // Clear the negotiation before connecting: an OPENED handler may re-install handlers.
  s.telnetInit = null;
  io.telnetSource = null;
  tcpChrConnect(chr);
  return false;
}

/** Queue the negotiation and wait for G_IO_OUT. @qemu chardev/char-socket.c tcp_chr_telnet_init */
function tcpChrTelnetInit(chr: Chardev): void {
  const s = sockState(chr);
  const io = sockIo(chr);
  tcpChrTelnetDestroy(chr, io);
  if (s.telnetInit === null) s.telnetInit = [...(s.isTn3270 ? TN3270_INIT : TELNET_INIT)];
  io.telnetSource = vfdAddWatch(
    chr.m, io.conn!, G_IO_OUT, `chardev-telnet-${chr.label}`, G_PRIORITY_DEFAULT,
    () => tcpChrTelnetInitIo(chr),
  );
}

/** Frontend handlers changed: re-create the sources. @qemu tcp_chr_update_read_handler */
export function tcpChrUpdateReadHandler(chr: Chardev): void {
  const s = sockState(chr);
  const io = sockIo(chr);
  if (io.listener && s.state === 'disconnected') tcpChrSetListenerFunc(chr, true);
  if (io.telnetSource) tcpChrTelnetInit(chr);
  updateIocHandlers(chr);
}

/** Take a connection in state connecting. @qemu chardev/char-socket.c tcp_chr_new_client */
export function tcpChrNewClient(chr: Chardev, conn: VirtualFd): number {
  const s = sockState(chr);
  const io = sockIo(chr);
  if (s.state !== 'connecting') return -1;
  io.conn = conn;
  s.connFd = conn.id;
  io.net.setNodelay(conn.id, s.doNodelay);
  if (io.listener) tcpChrSetListenerFunc(chr, false);
  if (s.doTelnetopt) tcpChrTelnetInit(chr);
  else tcpChrConnect(chr);
  return 0;
}

/** Take the oldest pending connection on the listener. @qemu tcp_chr_accept */
function tcpChrAccept(chr: Chardev): void {
  const io = sockIo(chr);
  const id = io.listener ? vfdAccept(io.listener.fd) : null;
  if (id === null) return;
  const conn = chr.m.fdt.fds.get(id);
  if (!conn) return; // closed by its host before the kernel took it
  tcpChrChangeState(sockState(chr), 'connecting');
  tcpChrNewClient(chr, conn);
}

/**
 * Register (on) or remove (off) tcp_chr_accept as the listener's client callback. Registering
 * replaces the previous source, as qio_net_listener_set_client_func_full does.
 */
export function tcpChrSetListenerFunc(chr: Chardev, on: boolean): void {
  const io = sockIo(chr);
  if (io.listenSource) gSourceDestroy(chr.m.loop.sources, io.listenSource);
  io.listenSource = null;
  if (!on || !io.listener || io.listener.fd.closed) return;
  io.listenSource = vfdAddWatch(
    chr.m, io.listener.fd, G_IO_IN, `chardev-tcp-listener-${chr.label}`, G_PRIORITY_DEFAULT,
    () => {
      tcpChrAccept(chr);
      return true;
    },
    'tcp_chr_accept', { chardev: chr.label },
  );
}

/**
 * Take a pending connection now, outside the main loop (QEMU blocks in accept for wait=on; the
 * live start-up helper calls this once a connection arrived). Returns whether one was taken.
 * @qemu chardev/char-socket.c tcp_chr_accept_server_sync
 */
export function tcpChrAcceptServerSync(chr: Chardev): boolean {
  const s = sockState(chr);
  const io = sockIo(chr);
  if (s.state !== 'disconnected' || !io.listener || io.listener.fd.accepts.length === 0) {
    return false;
  }
  tcpChrAccept(chr);
  return true;
}

/** An output watch on the connection; 0 when not connected. @qemu tcp_chr_add_watch */
function tcpChrAddWatch(chr: Chardev, cond: number, fn: (cond: number) => boolean): number {
  const io = sockIo(chr);
  if (!io.conn) return 0;
  return chrAddFdWatch(chr, io.conn, cond, fn);
}

/** @qemu chardev/char-socket.c char_socket_finalize */
function charSocketFinalize(chr: Chardev): void {
  const io = sockIo(chr);
  if (io.conn) tcpChrFreeConnection(chr);
  if (io.reconnectTimer) timerDel(io.reconnectTimer);
  io.reconnectTimer = null;
  if (io.connector) io.connector.cancel();
  if (io.connectSource) gSourceDestroy(chr.m.loop.sources, io.connectSource);
  io.connector = null;
  io.connectSource = null;
  tcpChrSetListenerFunc(chr, false);
  io.listener?.close();
  io.listener = null;
  qemuChrBeEvent(chr, CHR_EVENT_CLOSED);
}

/** @qemu chardev/char-socket.c char_socket_class_init */
export const socketDriver: ChardevDriver = {
  type: 'socket',
  write: tcpChrWrite,
  updateReadHandlers: tcpChrUpdateReadHandler,
  addWatch: tcpChrAddWatch,
  disconnect: tcpChrDisconnect,
  finalize: charSocketFinalize,
};
