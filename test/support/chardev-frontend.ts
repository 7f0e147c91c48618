// A recording frontend for chardev tests: attaches to a chardev like a device or a monitor
// would, records every event and read (in one ordered log), and reads at most `canRead` bytes
// per call (a can_read that tests change to exercise flow control). Also small loop helpers.

import {
  type CharBackend, type Chardev, type QEMUChrEvent, CHR_EVENT_NAMES, charBackendCreate,
  qemuChrFeAcceptInput, qemuChrFeInit, qemuChrFeSetHandlers,
} from '../../core/char/index.ts';
import { type LoopMachine, loopMachineCreate, loopStep } from '../../core/loop/index.ts';

export interface TestFrontend {
  name: string;
  be: CharBackend;
  /** Event names and reads in order: 'OPENED', 'read:3', ... */
  log: string[];
  events: string[];
  received: number[];
  /** Sizes of the chr_read calls, in order. */
  reads: number[];
  /** What can_read returns. */
  canRead: number;
}

/** Attach a recording frontend to `chr` and install its handlers. Throws on fe_init failure. */
export function testFrontendAttach(chr: Chardev, name = 'fe', canRead = 4096): TestFrontend {
  const fe: TestFrontend = { name, be: charBackendCreate(), log: [], events: [], received: [], reads: [], canRead };
  const err = qemuChrFeInit(fe.be, chr);
  if (err) throw new Error(`testFrontendAttach(${name}): ${err.desc}`);
  qemuChrFeSetHandlers(
    fe.be,
    () => fe.canRead,
    (_o, buf) => {
      fe.reads.push(buf.length);
      fe.log.push(`read:${buf.length}`);
      for (const b of buf) fe.received.push(b);
    },
    (_o, ev: QEMUChrEvent) => {
      fe.events.push(CHR_EVENT_NAMES[ev]);
      fe.log.push(CHR_EVENT_NAMES[ev]);
    },
    null, fe,
  );
  return fe;
}

/** Change what can_read returns; going from 0 to > 0 calls accept_input, as frontends do. */
export function testFrontendSetCanRead(fe: TestFrontend, n: number): void {
  const was = fe.canRead;
  fe.canRead = n;
  if (was === 0 && n > 0) qemuChrFeAcceptInput(fe.be);
}

/** The received bytes as a binary string. */
export function testFrontendText(fe: TestFrontend): string {
  return String.fromCharCode(...fe.received);
}

/** A virtual-mode machine with control-plane tracing. */
export function testMachine(): LoopMachine {
  return loopMachineCreate({ trace: { level: 1 } });
}

/** Run exactly `n` main-loop iterations (an idle machine just iterates). */
export function spin(m: LoopMachine, n: number): void {
  for (let i = 0; i < n; i++) loopStep(m);
}

/** Iterate until `pred` holds; throws after `max` iterations with `what` in the message. */
export function spinUntil(
  m: LoopMachine, pred: () => boolean, what: string, max = 100_000,
): number {
  for (let i = 0; i < max; i++) {
    if (pred()) return i;
    loopStep(m);
  }
  throw new Error(`spinUntil: ${what} did not happen within ${max} iterations`);
}

const encoder = new TextEncoder();

/** UTF-8 bytes of a string. */
export function bytes(s: string): Uint8Array {
  return encoder.encode(s);
}

/** Bytes of a binary string (one char per byte). */
export function binary(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}
