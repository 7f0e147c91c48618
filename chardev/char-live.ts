// Live-mode start-up helpers for bin/: QEMU creates command-line chardevs synchronously, binding
// listen sockets (a port in use is a start-up error), blocking a wait=on server until its first
// client connects, and connecting clients. Node's sockets are asynchronous, so detvm creates the
// chardev at once (qemuChrNewFromOpts) and these helpers await what QEMU would have blocked on.
// They are the only async code in chardev/, run before the machine starts, and must not be
// used in virtual mode (virtual mode never waits: listeners accept from the first iteration).

import { type Chardev, chardevDestroy } from '../core/char/index.ts';
import type { HostIo, NetListener } from '../core/host/index.ts';
import { hostDeliverDue } from '../core/loop/index.ts';
import { chardevIsMux, muxIo } from './char-mux.ts';
import {
  type ChrNewResult, type NewFromOptsResult, qemuChrNew, qemuChrNewFromOpts,
} from './char-new.ts';
import { sockIo, sockState, tcpChrAcceptServerSync } from './char-socket.ts';
import type { QemuOpts, QemuOptsList } from './qemu-option.ts';
import { tcpChrConnectClientFinish } from './socket-client.ts';

function settled(l: NetListener): Promise<void> {
  if (l.status !== 'pending') return Promise.resolve();
  return new Promise((resolve) => {
    const prev = l.onSettled;
    l.onSettled = (x) => {
      prev?.(x);
      resolve();
    };
  });
}

/** Apply every host input that has arrived (start-up runs outside the main loop). */
function applyArrived(chr: Chardev): void {
  hostDeliverDue(chr.m.fdt, Number.MAX_SAFE_INTEGER);
}

/** Destroy a chardev created for a start-up that failed (a mux and its base). */
function destroyWithBase(chr: Chardev): void {
  const base = chardevIsMux(chr) ? muxIo(chr).chr.chr : null;
  chardevDestroy(chr);
  if (base) chardevDestroy(base);
}

/**
 * Wait for what QEMU's chardev creation blocks on: a bound listener, the first client of a
 * wait=on server ("QEMU waiting for connection on: ..." is reported when the bind completes),
 * the connection of a client without reconnect. Returns QEMU's error text (the chardev is then
 * destroyed) or null. @qemu chardev/char-socket.c tcp_chr_accept_server_sync,
 * tcp_chr_connect_client_sync
 */
export async function chardevWaitStartup(io: HostIo, chr: Chardev): Promise<string | null> {
  const real = chardevIsMux(chr) ? muxIo(chr).chr.chr : chr;
  if (!real || real.driver.type !== 'socket') return null;
  const s = sockState(real);
  const sio = sockIo(real);
  sio.quiet = true;
  try {
    if (sio.listener) {
      await settled(sio.listener);
      if (sio.listener.status === 'failed') {
        const err = sio.listener.error ?? 'Failed to listen on socket';
        destroyWithBase(chr);
        return err;
      }
      for (let i = 0; s.isWaitconnect && s.state === 'disconnected'; i++) {
        applyArrived(real);
        if (tcpChrAcceptServerSync(real)) break;
        await io.waitEvent(-1);
      }
      return null;
    }
    for (let i = 0; s.reconnectTimeMs === 0 && sio.connector; i++) {
      applyArrived(real);
      if (tcpChrConnectClientFinish(real)) break;
      await io.waitEvent(-1);
    }
    if (s.reconnectTimeMs === 0 && s.state === 'disconnected' && s.lastError !== null) {
      const err = s.lastError;
      destroyWithBase(chr);
      return err;
    }
    return null;
  } finally {
    sio.quiet = false;
  }
}

/** qemuChrNewFromOpts, then chardevWaitStartup. For bin/ at start-up only. */
export async function qemuChrNewFromOptsLive(
  io: HostIo, m: Chardev['m'], opts: QemuOpts, replay = false,
): Promise<NewFromOptsResult> {
  const r = qemuChrNewFromOpts(m, opts, replay);
  if (!r.ok) return r;
  const err = await chardevWaitStartup(io, r.chr);
  return err === null ? r : { ok: false, error: err };
}

/** qemuChrNew (legacy specs such as -monitor tcp:...,server=on), then chardevWaitStartup. */
export async function qemuChrNewLive(
  io: HostIo, m: Chardev['m'], list: QemuOptsList, label: string, filename: string,
  permitMuxMon: boolean, replay = false,
): Promise<ChrNewResult> {
  const r = qemuChrNew(m, list, label, filename, permitMuxMon, replay);
  if (!r.ok) return r;
  const err = await chardevWaitStartup(io, r.chr);
  return err === null ? r : { ok: false, report: { level: 'error', msg: err } };
}
