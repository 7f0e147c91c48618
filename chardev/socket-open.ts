// Opening a socket chardev (chardev/char-socket.c qmp_chardev_open_socket, 7.2): validation,
// defaults (QMP's server=on/wait=off when unset; detvm turns nodelay on unless told otherwise,
// QEMU leaves Nagle on), then listen (backlog 1) or connect. A server with wait=on prints QEMU's
// "QEMU waiting for connection on: ..." line; detvm never blocks here: the live start-up helper
// (char-live.ts) waits for the first client, and in virtual mode the listener simply accepts.

import { type Chardev, chardevCreate, chrReport } from '../core/char/index.ts';
import type { NetListener, NetProvider } from '../core/host/index.ts';
import type { ChardevSocket } from './char-parse.ts';
import type { OpenResult } from './char-driver.ts';
import {
  type SocketChardevIo, type SocketChardevState, sockIo, sockState, socketDriver,
  tcpChrSetListenerFunc, updateDisconnectedFilename,
} from './char-socket.ts';
import { tcpChrConnectClientAsync, tcpChrConnectClientSync } from './socket-client.ts';

/** @qemu chardev/char-socket.c qmp_chardev_validate_socket (7.2) */
export function qmpChardevValidateSocket(sock: ChardevSocket): string | null {
  const addr = sock.addr;
  const server = sock.server === undefined || sock.server;
  if (addr.type === 'fd') {
    if (sock.reconnect !== undefined) {
      return "'reconnect' option is incompatible with 'fd' address type";
    }
    if (sock.tlsCreds !== undefined && !(sock.server === true)) {
      return "'tls_creds' option is incompatible with 'fd' address type as client";
    }
  } else if (addr.type === 'unix' && sock.tlsCreds !== undefined) {
    return "'tls_creds' option is incompatible with 'unix' address type";
  }
  if (sock.tlsAuthz !== undefined && sock.tlsCreds === undefined) {
    return "'tls_authz' option requires 'tls_creds' option";
  }
  if (server) {
    if (sock.reconnect !== undefined) {
      return "'reconnect' option is incompatible with socket in server listen mode";
    }
  } else {
    if (sock.websocket) return 'Websocket client is not implemented';
    if (sock.wait !== undefined) {
      return "'wait' option is incompatible with socket in client connect mode";
    }
  }
  return null;
}

/** Apply a settled listener: the bound address (port 0 resolved) or the failure. */
function socketListenerSettled(chr: Chardev, l: NetListener, wait: boolean): void {
  const s = sockState(chr);
  const io = sockIo(chr);
  if (l.status === 'failed') {
    s.lastError = l.error;
    if (!io.quiet) {
      chrReport(chr.m, { level: 'error', msg: l.error ?? 'Failed to listen on socket' });
    }
    return;
  }
  if (l.local) s.addr = l.local;
  if (s.state === 'disconnected') updateDisconnectedFilename(chr);
  if (wait) {
    chrReport(chr.m, { level: 'info', msg: `QEMU waiting for connection on: ${chr.filename}` });
  }
}

/** @qemu chardev/char-socket.c qmp_chardev_open_socket_server */
function qmpChardevOpenSocketServer(chr: Chardev, isTelnet: boolean, wait: boolean): string | null {
  const s = sockState(chr);
  const io = sockIo(chr);
  if (isTelnet) s.doTelnetopt = 1;
  const l = io.net.listen(s.addr, 1, `chardev-tcp-listener-${chr.label}`);
  if (l.status === 'failed') {
    l.close();
    return l.error ?? 'Failed to listen on socket';
  }
  io.listener = l;
  s.listenFd = l.fd.id;
  if (l.status === 'listening') socketListenerSettled(chr, l, wait);
  else l.onSettled = (settled) => socketListenerSettled(chr, settled, wait);
  tcpChrSetListenerFunc(chr, true);
  return null;
}

/**
 * Create and open a socket chardev on `net`. Returns the chardev (not yet registered) or
 * QEMU's error text. @qemu chardev/char-socket.c qmp_chardev_open_socket
 */
export function qmpChardevOpenSocket(
  m: Chardev['m'], label: string, sock: ChardevSocket, net: NetProvider,
): OpenResult {
  const isListen = sock.server ?? true;
  const isTelnet = sock.telnet ?? false;
  const isTn3270 = sock.tn3270 ?? false;
  const wait = sock.wait ?? false;
  if (sock.tlsCreds !== undefined) {
    return { ok: false, error: `No TLS credentials with id '${sock.tlsCreds}'` };
  }
  const v = qmpChardevValidateSocket(sock);
  if (v) return { ok: false, error: v };
  if (sock.addr.type === 'fd') {
    const error = "'fd' socket addresses are not supported by detvm (use host/port or path)";
    return { ok: false, error };
  }
  if (sock.websocket) return { ok: false, error: 'websocket chardevs are not supported by detvm' };
  const state: SocketChardevState = {
    name: 'socket', state: 'disconnected', addr: sock.addr, isListen, isTelnet, isTn3270,
    isWebsock: false, isWaitconnect: isListen && wait, doNodelay: sock.nodelay ?? true,
    doTelnetopt: 0, maxSize: 0,
    reconnectTimeMs: 0, connectErrReported: false, telnetInit: null, listenFd: null, connFd: null,
    lastError: null,
  };
  const io: SocketChardevIo = {
    net, listener: null, listenSource: null, conn: null, hupSource: null, telnetSource: null,
    connector: null, connectSource: null, reconnectTimer: null, quiet: false,
  };
  const chr = chardevCreate(m, label, socketDriver, '', state);
  chr.io = io;
  updateDisconnectedFilename(chr);
  let err: string | null;
  if (isListen) {
    err = qmpChardevOpenSocketServer(chr, isTelnet || isTn3270, wait);
  } else if (sock.reconnect !== undefined && sock.reconnect > 0) {
    state.reconnectTimeMs = sock.reconnect * 1000;
    tcpChrConnectClientAsync(chr);
    err = null;
  } else {
    err = tcpChrConnectClientSync(chr);
  }
  if (err !== null) {
    chr.driver.finalize?.(chr);
    return { ok: false, error: err };
  }
  // The backend is not open until a connection exists (tcp_chr_connect sends OPENED).
  return { ok: true, chr, beOpened: false };
}
