// The async driver for real-socket tests (what bin/'s live driver does): run main-loop
// iterations while there is work, otherwise await the next host event or deadline. No sleeps and
// no fixed delays: every wait is on a socket event (through HostIo.waitEvent) or a promise.
// Also a live machine factory and small promise helpers for node:net test clients.

import * as net from 'node:net';
import { charState } from '../../core/char/index.ts';
import { type HostIo, hostClockSourceCreate, hostIoCreate } from '../../core/host/index.ts';
import { type LoopMachine, loopMachineCreate, mainLoopWait } from '../../core/loop/index.ts';
import { chardevSetIo, qemuChrCleanup } from '../../chardev/index.ts';

export interface LiveMachine {
  m: LoopMachine;
  io: HostIo;
  /** Destroy every chardev and close every socket. */
  close(): void;
}

/** A live-mode machine with real host I/O. */
export function liveMachineCreate(opts: Parameters<typeof hostIoCreate>[1] = {}): LiveMachine {
  const m = loopMachineCreate({ clock: { mode: 'live', host: hostClockSourceCreate() }, trace: { level: 0 } });
  const io = hostIoCreate(m, opts);
  chardevSetIo(m, io);
  return {
    m, io,
    close: () => {
      qemuChrCleanup(m);
      io.close();
      charState(m).chardevs.clear();
    },
  };
}

/**
 * Run the machine until `pred()` holds. Between iterations with nothing to do, awaits a host
 * event (or the loop's next deadline); every 64 busy iterations yields to Node so test clients
 * run. Throws after `maxIterations`.
 */
export async function liveRunUntil(
  lm: LiveMachine, pred: () => boolean, what: string, maxIterations = 2_000_000,
): Promise<void> {
  const { m, io } = lm;
  for (let i = 0; i < maxIterations; i++) {
    if (pred()) return;
    // An iteration that applied host inputs may have attached sources that are ready now (a
    // re-armed listener with a client waiting): only an iteration with no input and a
    // non-zero timeout was idle, and only then may the driver wait.
    const hadInput = m.fdt.arrived.length > 0;
    mainLoopWait(m, false);
    if (pred()) return;
    if (!hadInput && m.loop.lastTimeoutNs !== 0) await io.waitEvent(m.loop.lastTimeoutNs);
    else if ((i & 63) === 63) await io.yieldNow();
  }
  throw new Error(`liveRunUntil: ${what} did not happen within ${maxIterations} iterations`);
}

/** Connect a node:net client; resolves once connected. */
export function tcpConnect(port: number, host = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Connect a node:net client to a unix socket. */
export function unixConnect(path: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ path }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Collect everything a test client receives; each arrival wakes the live driver. */
export function collect(
  lm: LiveMachine, s: net.Socket,
): { data: Buffer[]; bytes: () => Buffer; ended: Promise<void> } {
  const data: Buffer[] = [];
  const ended = new Promise<void>((resolve) => {
    s.on('end', () => {
      lm.io.wake();
      resolve();
    });
    s.on('close', () => {
      lm.io.wake();
      resolve();
    });
  });
  s.on('data', (d: Buffer) => {
    data.push(d);
    lm.io.wake();
  });
  return { data, bytes: () => Buffer.concat(data), ended };
}

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** The port a socket chardev listens on, from its disconnected filename. */
export function listenPort(filename: string): number {
  const m = /:(\d+),server=on/.exec(filename);
  if (!m) throw new Error(`no port in filename '${filename}'`);
  return Number(m[1]);
}
