// A fingerprint of the guest-visible machine state, for checking a migration (detvm only, no
// QEMU counterpart; the QMP command x-detvm-query-state-hash shows it). It covers what the
// migration stream carries and the guest can observe: every VMState section's bytes but
// "timer" (host-time offsets) and "globalstate" (the run state at save), every RAM block, and
// the instruction count. The VIRTUAL clock is reported next to it, not hashed: in live mode it
// follows real time while every vCPU sleeps, so an idle guest sees the same state at any of its
// values until its next timer fires.
// Invariant: reads only; the machine is unchanged.

import { createHash } from 'node:crypto';
import { QEMU_CLOCK_VIRTUAL, icountGetRaw, qemuClockGetNs } from '../loop/index.ts';
import { allCpuThreadsIdle } from '../system/index.ts';
import { qemuFileGetBuffer, qemuFileWriterCreate } from './qemu-file.ts';
import { vmstateSaveState } from './vmstate.ts';
import type { MigrationMachine } from './migration-state.ts';

/** Sections whose bytes depend on host time or on when the save ran. */
const UNHASHED_SECTIONS = new Set(['timer', 'globalstate']);

export interface MigrationStateHash {
  /** sha256 (hex) of the sections, RAM and instruction count. */
  hash: string;
  icount: number;
  virtualNs: number;
  /** Every vCPU sleeps (WFI without pending work) or is stopped. */
  idle: boolean;
}

/** The guest-visible state fingerprint of `m` (see the header). */
export function migrationStateHash(m: MigrationMachine): MigrationStateHash {
  const h = createHash('sha256');
  const ms = m.migration;
  for (const se of ms.sv.handlers) {
    if (se.vmsd === null || se.opaque === null || UNHASHED_SECTIONS.has(se.idstr)) continue;
    const f = qemuFileWriterCreate();
    vmstateSaveState(f, se.vmsd, se.opaque, null);
    h.update(`${se.idstr}/${se.instanceId}:`);
    h.update(qemuFileGetBuffer(f));
  }
  const zero = new Uint8Array(4096);
  for (const blk of ms.rs.blocks) {
    h.update(`ram ${blk.idstr} ${blk.usedLength}:`);
    const pages = blk.usedLength / 4096;
    for (let p = 0; p < pages; p++) h.update(blk.readPage(p) ?? zero);
  }
  const icount = icountGetRaw(m.clocks);
  h.update(`icount=${icount}`);
  return {
    hash: h.digest('hex'), icount, virtualNs: qemuClockGetNs(m.clocks, QEMU_CLOCK_VIRTUAL),
    idle: allCpuThreadsIdle(m),
  };
}
