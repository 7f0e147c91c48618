// Helpers for migration tests on the whole virt machine: the demo guest, a fingerprint of the
// guest-visible machine state (every section but the host-time offsets of "timer" and the
// globalstate, plus RAM and the VIRTUAL clock), and a trace of the next steps made independent
// of where the machine's counters stood (sequence numbers, host time and loop iterations are
// taken relative to the start).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  QEMU_CLOCK_VIRTUAL, loopStep, qemuClockGetNs, type LoopMachine,
} from '../../../core/loop/index.ts';
import { addressSpaceRead, RAM_BASE } from '../../../core/memory/index.ts';
import {
  qemuFileGetBuffer, qemuFileWriterCreate, vmstateSaveState, type MigrationMachine,
} from '../../../core/migration/index.ts';
import { traceCanonicalLine } from '../../../core/trace/index.ts';
import type { VirtMachine } from '../../../core/machine.ts';

export const DEMO_ELF_PATH = fileURLToPath(new URL('../../../guests/bin/demo.elf', import.meta.url));
export const DEMO_ELF = new Uint8Array(readFileSync(DEMO_ELF_PATH));

/**
 * A fingerprint of what the guest can observe: every device section's bytes (not "timer", whose
 * offsets depend on host time, nor "globalstate", which records the run state at save), the
 * VIRTUAL clock, the instruction count and all of RAM.
 */
export function machineStateHash(m: MigrationMachine & { as: VirtMachine['as'] }): string {
  const h = createHash('sha256');
  for (const se of m.migration.sv.handlers) {
    if (se.vmsd === null || se.opaque === null) continue;
    if (se.idstr === 'timer' || se.idstr === 'globalstate') continue;
    const f = qemuFileWriterCreate();
    vmstateSaveState(f, se.vmsd, se.opaque, null);
    h.update(`${se.idstr}/${se.instanceId}:`);
    h.update(qemuFileGetBuffer(f));
  }
  h.update(`virtual=${qemuClockGetNs(m.clocks, QEMU_CLOCK_VIRTUAL)} icount=${m.clocks.icount}`);
  const ram = new Uint8Array(m.as.ramSize);
  addressSpaceRead(m.as, RAM_BASE, ram);
  h.update(ram);
  return h.digest('hex');
}

/**
 * Run `n` loop steps and return their trace as canonical lines with seq, host time and the loop
 * iteration number relative to the first step (the machine must trace with retention).
 */
export function relativeTrace(m: LoopMachine, n: number): string[] {
  const seq0 = m.trace.seq;
  const ns0 = m.clocks.simNs;
  const iter0 = m.loop.iteration;
  const out: string[] = [];
  for (let i = 0; i < n && m.loop.exitStatus === null; i++) {
    for (const r of loopStep(m)) {
      const args = r.args && typeof r.args.iteration === 'number'
        ? { ...r.args, iteration: r.args.iteration - iter0 } : r.args;
      const now = args && typeof args.now_ns === 'number' ? { ...args, now_ns: args.now_ns - ns0 } : args;
      out.push(traceCanonicalLine({ ...r, seq: r.seq - seq0, ns: r.ns - ns0, args: now }));
    }
  }
  return out;
}

/** Index of the first differing line, or -1. */
export function firstDifference(a: readonly string[], b: readonly string[]): number {
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return -1;
}
