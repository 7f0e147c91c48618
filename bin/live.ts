// The live driver (DESIGN.md §6): the only async code. It runs main-loop iterations (each
// followed by one vCPU turn) while there is work, and awaits the next host event or deadline
// when there is none. While vCPUs run it yields to Node's event loop at least every few
// milliseconds of wall time, so sockets and the terminal stay responsive.

import { type HostIo, hostClockSourceCreate, hostIoCreate } from '../core/host/index.ts';
import { aioBhScheduledNow, loopStep, loopWouldSpin, type LoopMachine, type LoopStepObserver } from '../core/loop/index.ts';
import type { ChardevIo } from '../core/host/index.ts';
import type { MachineConfig } from '../index.ts';
import { charState } from '../core/char/index.ts';
import { chardevWaitStartup } from '../chardev/index.ts';

/** Wall time between two yields to Node while the loop is busy, and shortly after input. */
const YIELD_EVERY_MS = 1;
const YIELD_AFTER_INPUT_MS = 0.2;
/** How long after the last input the driver polls before sleeping, and for how long. */
const POLL_AFTER_INPUT_MS = 10;
const POLL_MAX_NS = 50_000;

/** The live host for createMachine: real clocks, and real sockets, stdio and files. */
export function liveHost(opts: Parameters<typeof hostIoCreate>[1] = {}): {
  host: NonNullable<MachineConfig['host']>;
  io: () => HostIo;
} {
  let io: HostIo | null = null;
  return {
    host: {
      clock: hostClockSourceCreate(),
      io: (m: LoopMachine): ChardevIo => {
        io = hostIoCreate(m, opts);
        return io;
      },
    },
    io: () => {
      if (!io) throw new Error('the live host I/O is created with the machine');
      return io;
    },
  };
}

/**
 * Run `m` until its main loop exits; resolves with the exit status. `stop()` of the returned
 * handle ends the run early (resolving with null).
 */
export function runLive(m: LoopMachine, io: HostIo, onIteration?: () => void): { done: Promise<number | null>; stop(): void } {
  let stopped = false;
  // Output held by chardevs leaves once an iteration's main-loop part has no input left to read
  // and no bottom half to run next (an HMP command's prompt comes from monitor_accept_input, a
  // BH of the iteration after the command): a command's echo, output and prompt leave together,
  // before the vCPU turn (a busy guest's turn would hold a reply back by half a millisecond).
  const flush: LoopStepObserver = {
    begin: () => {},
    mid: () => {
      if (!m.loop.inputLeftover && !aioBhScheduledNow(m.loop.aio)) io.net.flushWrites();
    },
    end: () => {},
  };
  m.loop.stepObservers.push(flush);
  const done = (async (): Promise<number | null> => {
    let lastYield = performance.now();
    let lastInput = -Infinity;
    while (!stopped) {
      const hadInput = m.fdt.arrived.length > 0;
      if (hadInput) lastInput = performance.now();
      loopStep(m);
      onIteration?.();
      if (m.loop.exitStatus !== null) return m.loop.exitStatus;
      // Idle unless this iteration took input, its poll had a zero timeout, or its vCPU turn
      // notified the loop (qemu_notify_event: QEMU's next poll would return at once).
      if (!hadInput && m.loop.lastTimeoutNs !== 0 && !loopWouldSpin(m)) {
        // Shortly after input (a client that sends command after command), look for the next
        // input for a moment before sleeping: the host wakes a sleeping process tens of
        // microseconds late, more than a client takes to answer. (QEMU's AioContexts poll
        // before sleeping in the same way: poll-max-ns.)
        const now = performance.now();
        const timeoutNs = m.loop.lastTimeoutNs;
        const pollNs = timeoutNs < 0 ? POLL_MAX_NS : Math.min(POLL_MAX_NS, timeoutNs);
        if (now - lastInput < POLL_AFTER_INPUT_MS && await io.pollEvent(pollNs)) {
          lastYield = performance.now();
          continue;
        }
        await io.waitEvent(m.loop.lastTimeoutNs);
        lastYield = performance.now();
      } else {
        // Busy: yield to Node every YIELD_EVERY_MS; every YIELD_AFTER_INPUT_MS while a vCPU runs
        // shortly after input (a client waits for its answer and may send the next command: it
        // is read after the current vCPU turn instead of up to a millisecond later).
        const now = performance.now();
        const soon = now - lastInput < POLL_AFTER_INPUT_MS && m.loop.hooks.vcpuBusy(m);
        if (now - lastYield < (soon ? YIELD_AFTER_INPUT_MS : YIELD_EVERY_MS)) continue;
        await io.yieldNow();
        lastYield = performance.now();
      }
    }
    return null;
  })().finally(() => {
    const i = m.loop.stepObservers.indexOf(flush);
    if (i >= 0) m.loop.stepObservers.splice(i, 1);
  });
  return {
    done,
    stop: () => {
      stopped = true;
      io.wake();
    },
  };
}

/**
 * What QEMU's chardev creation blocks on in live mode: listeners bound, the first client of a
 * wait=on server, the connection of a client socket. Returns QEMU's error text, or null.
 */
export async function liveStartup(m: LoopMachine, io: HostIo): Promise<string | null> {
  for (const chr of [...charState(m).chardevs.values()]) {
    const err = await chardevWaitStartup(io, chr);
    if (err) return err;
  }
  return null;
}
