// Client-side connects of the socket chardev (chardev/char-socket.c, 7.2): the synchronous
// connect at creation (reconnect=0), the background connect whose result the main loop picks
// up (qemu_chr_socket_connected), and reconnect=N: a REALTIME timer with
// QEMU_TIMER_ATTR_EXTERNAL (it serves an external event, so replay does not gate it) that
// retries after every failure or disconnect; a failure is reported once until a connect works.

import { type Chardev, chrReport, vfdAddWatch } from '../core/char/index.ts';
import {
  G_IO_HUP, G_IO_IN, G_PRIORITY_DEFAULT, QEMU_CLOCK_REALTIME, QEMU_TIMER_ATTR_EXTERNAL, SCALE_MS,
  SCALE_NS, gSourceDestroy, qemuClockGetNs, timerModNs, timerNew, timerPending, vfdAccept, vfdClose,
} from '../core/loop/index.ts';
import { assert } from '../core/util/index.ts';
import { sockIo, sockState, tcpChrChangeState, tcpChrNewClient } from './char-socket.ts';

/** Arm the reconnect timer. @qemu chardev/char-socket.c qemu_chr_socket_restart_timer */
export function qemuChrSocketRestartTimer(chr: Chardev): void {
  const s = sockState(chr);
  const io = sockIo(chr);
  assert(s.state === 'disconnected', `socket '${chr.label}': reconnect timer while ${s.state}`);
  if (!io.reconnectTimer) {
    io.reconnectTimer = timerNew(
      chr.m.loop.tlg, QEMU_CLOCK_REALTIME, SCALE_NS, `chardev-socket-reconnect-${chr.label}`,
      () => socketReconnectTimeout(chr), null, QEMU_TIMER_ATTR_EXTERNAL,
    );
  }
  assert(!timerPending(io.reconnectTimer), `socket '${chr.label}': reconnect timer already armed`);
  const now = qemuClockGetNs(chr.m.clocks, QEMU_CLOCK_REALTIME);
  timerModNs(io.reconnectTimer, now + s.reconnectTimeMs * SCALE_MS);
}

/** @qemu chardev/char-socket.c socket_reconnect_timeout */
function socketReconnectTimeout(chr: Chardev): void {
  if (chr.beOpen) return;
  if (sockState(chr).state !== 'disconnected') return;
  tcpChrConnectClientAsync(chr);
}

/** Report a failed background connect once, then retry later. @qemu check_report_connect_error */
function checkReportConnectError(chr: Chardev, error: string): void {
  const s = sockState(chr);
  const io = sockIo(chr);
  s.lastError = error;
  if (!s.connectErrReported && !io.quiet) {
    const msg = `Unable to connect character device ${chr.label}: ${error}`;
    chrReport(chr.m, { level: 'error', msg });
  }
  s.connectErrReported = true;
  if (s.reconnectTimeMs) qemuChrSocketRestartTimer(chr);
}

/** The background connect finished. @qemu chardev/char-socket.c qemu_chr_socket_connected */
function qemuChrSocketConnected(chr: Chardev): void {
  const s = sockState(chr);
  const io = sockIo(chr);
  const c = io.connector;
  io.connector = null;
  io.connectSource = null;
  if (!c) return;
  const id = vfdAccept(c.fd);
  vfdClose(chr.m.fdt, c.fd);
  const conn = id === null ? undefined : chr.m.fdt.fds.get(id);
  if (!conn) {
    tcpChrChangeState(s, 'disconnected');
    checkReportConnectError(chr, c.error ?? 'Connection failed');
    return;
  }
  s.connectErrReported = false;
  s.lastError = null;
  tcpChrNewClient(chr, conn);
}

/**
 * Finish a background connect whose result has already been applied to the connector, outside
 * the main loop (the live start-up helper, as QEMU's connect at creation is synchronous).
 * Returns false if the result is not there yet.
 */
export function tcpChrConnectClientFinish(chr: Chardev): boolean {
  const io = sockIo(chr);
  const c = io.connector;
  if (!c || (c.fd.accepts.length === 0 && !c.fd.hup)) return false;
  if (io.connectSource) gSourceDestroy(chr.m.loop.sources, io.connectSource);
  qemuChrSocketConnected(chr);
  return true;
}

/** Connect in the background. @qemu chardev/char-socket.c tcp_chr_connect_client_async */
export function tcpChrConnectClientAsync(chr: Chardev): void {
  const s = sockState(chr);
  const io = sockIo(chr);
  tcpChrChangeState(s, 'connecting');
  const c = io.net.connect(s.addr, `chardev-tcp-client-${chr.label}`);
  io.connector = c;
  io.connectSource = vfdAddWatch(
    chr.m, c.fd, G_IO_IN | G_IO_HUP, `chardev-connect-${chr.label}`, G_PRIORITY_DEFAULT,
    () => {
      qemuChrSocketConnected(chr);
      return false;
    },
    'qemu_chr_socket_connected', { chardev: chr.label },
  );
}

/**
 * Connect at creation. Returns QEMU's error text, or null. A provider that cannot connect
 * synchronously (the real host) connects in the background instead; the live start-up helper
 * waits for the result and turns a failure into the creation error.
 * @qemu chardev/char-socket.c tcp_chr_connect_client_sync
 */
export function tcpChrConnectClientSync(chr: Chardev): string | null {
  const s = sockState(chr);
  const io = sockIo(chr);
  if (!io.net.connectSync) {
    tcpChrConnectClientAsync(chr);
    return null;
  }
  tcpChrChangeState(s, 'connecting');
  const r = io.net.connectSync(s.addr, `chardev-tcp-client-${chr.label}`);
  if (!r.ok) {
    tcpChrChangeState(s, 'disconnected');
    return r.error;
  }
  tcpChrNewClient(chr, r.conn);
  return null;
}
