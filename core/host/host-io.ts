// The live host I/O of one machine: real sockets, stdio and files wired to the input boundary,
// plus what the async live driver (bin/, test drivers) needs to wait: `waitEvent` resolves when
// a host input arrives or the loop's next deadline passes. This is the only place detvm waits on
// real time. Usage: `const io = hostIoCreate(m); chardevSetIo(m, io);` then loop:
//   const hadInput = m.fdt.arrived.length > 0; mainLoopWait(m, false);
//   if (!hadInput && m.loop.lastTimeoutNs !== 0) await io.waitEvent(m.loop.lastTimeoutNs);
// An iteration that applied inputs may have attached sources that are already ready, so only an
// iteration with no input and a non-zero timeout was idle (test/support/chardev-live.ts).

import { type HostInput, type LoopMachine, hostInputArrived } from '../loop/index.ts';
import { hostFileProviderCreate } from './host-file.ts';
import { type HostNet, type HostNetOptions, hostNetCreate } from './host-net.ts';
import { type HostStdioOptions, hostStdioProviderCreate } from './host-stdio.ts';
import type { ChardevIo, FileProvider, StdioProvider } from './types.ts';

export interface HostIoOptions {
  net?: HostNetOptions;
  stdio?: HostStdioOptions;
}

export interface HostIo extends ChardevIo {
  readonly kind: 'host';
  net: HostNet;
  stdio: StdioProvider;
  files: FileProvider;
  /**
   * Resolve when a host input is waiting for the next poll, at once if one already is, or
   * after `timeoutNs` (negative: no timeout). Never rejects.
   */
  waitEvent(timeoutNs: number): Promise<void>;
  /** Wake a pending waitEvent for an event outside the machine (a signal, a test's client). */
  wake(): void;
  /** Let Node's event loop run (sockets, timers) once, without waiting otherwise. */
  yieldNow(): Promise<void>;
  /**
   * Let Node's event loop run without blocking, turn after turn, for up to `limitNs` of wall
   * time (at least one turn); true as soon as a host input waits or wake() was called.
   */
  pollEvent(limitNs: number): Promise<boolean>;
  /** Close every socket and listener. */
  close(): void;
}

const NS_PER_MS = 1_000_000;
/** setTimeout's upper bound (about 24.8 days). */
const TIMEOUT_MAX_MS = 0x7fffffff;

/** Real host I/O for live machine `m`. */
export function hostIoCreate(m: LoopMachine, opts: HostIoOptions = {}): HostIo {
  const waiters: (() => void)[] = [];
  const wake = (): void => {
    const ws = waiters.splice(0);
    for (const w of ws) w();
  };
  const deliver = (i: HostInput): void => {
    hostInputArrived(m.fdt, i);
    wake();
  };
  const net = hostNetCreate(m, deliver, opts.net);
  return {
    kind: 'host',
    net,
    stdio: hostStdioProviderCreate(m, deliver, opts.stdio),
    files: hostFileProviderCreate(m, deliver),
    waitEvent: (timeoutNs) => {
      if (m.fdt.arrived.length > 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        let timer: NodeJS.Timeout | null = null;
        const done = (): void => {
          if (timer) clearTimeout(timer);
          resolve();
        };
        waiters.push(done);
        if (timeoutNs >= 0) {
          const ms = Math.min(Math.ceil(timeoutNs / NS_PER_MS), TIMEOUT_MAX_MS);
          timer = setTimeout(() => {
            const i = waiters.indexOf(done);
            if (i >= 0) waiters.splice(i, 1);
            resolve();
          }, ms);
        }
      });
    },
    wake,
    yieldNow: () => new Promise<void>((resolve) => setImmediate(resolve)),
    pollEvent: async (limitNs) => {
      let woken = false;
      const w = (): void => {
        woken = true;
      };
      waiters.push(w);
      const t0 = performance.now();
      try {
        do {
          await new Promise<void>((resolve) => setImmediate(resolve));
          if (woken || m.fdt.arrived.length > 0) return true;
        } while ((performance.now() - t0) * NS_PER_MS < limitNs);
        return false;
      } finally {
        const i = waiters.indexOf(w);
        if (i >= 0) waiters.splice(i, 1);
      }
    },
    close: () => {
      net.closeAll();
      wake();
    },
  };
}
