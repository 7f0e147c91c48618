// Creates the layer-1 part of a Machine: clocks, trace, seeded PRNG, the sequence counter that
// orders every queue, the fd table of the input boundary, and the main loop. Higher layers
// (core/machine.ts) extend the object with vCPUs, memory and devices.

import { prngCreate, notifierListCreate } from '../util/index.ts';
import type { QapiEvent } from './main-loop.ts';
import { type ClockConfig, clocksCreate } from './clock.ts';
import { fdTableCreate } from './pollfd.ts';
import { type LoopMachine, qemuInitMainLoop } from './main-loop.ts';
import { type TraceConfig, traceCreate } from '../trace/index.ts';

export interface LoopConfig {
  clock?: ClockConfig;
  trace?: TraceConfig;
  /** Seed of the machine's PRNG (default 0). */
  seed?: number;
}

/** A machine with only the kernel loop (no vCPUs, no devices). */
export function loopMachineCreate(cfg: LoopConfig = {}): LoopMachine {
  const seed = cfg.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`seed ${seed} is not an integer in 0..4294967295`);
  }
  const partial = {
    clocks: clocksCreate(cfg.clock),
    trace: traceCreate(cfg.trace),
    rng: prngCreate(seed),
    fdt: fdTableCreate(),
    qapiEvents: notifierListCreate<QapiEvent>(),
  };
  const m = partial as LoopMachine;
  m.loop = qemuInitMainLoop(partial);
  return m;
}
