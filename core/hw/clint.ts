// The CLINT of the virt board as QEMU 7.2 builds it (hw/intc/riscv_aclint.c): an MSWI block at
// 0x2000000 (msip, 4 bytes per hart) and an MTIMER block at 0x2004000 (mtimecmp, 8 bytes per
// hart; mtime at 0x200bff8) ticking at 10 MHz from the VIRTUAL clock. 64-bit registers are kept
// as two uint32 halves; a comparator beyond 2^53 ticks (e.g. all ones) never fires.

import {
  type LoopMachine, type QEMUTimer, QEMU_CLOCK_VIRTUAL, qemuClockGetNs, timerDel, timerModNs, timerNew,
  timerPending,
} from '../loop/index.ts';
import { type CpuState, IRQ_M_SOFT, IRQ_M_TIMER, cpuSetIrqLevel } from '../cpu/index.ts';
import type { MemoryRegion } from '../memory/index.ts';

export const VIRT_CLINT_BASE = 0x2000000;
export const VIRT_CLINT_SIZE = 0x10000;
export const ACLINT_SWI_SIZE = 0x4000;
export const ACLINT_MTIMER_MTIME = 0x7ff8;
/** @qemu RISCV_ACLINT_DEFAULT_TIMEBASE_FREQ */
export const CLINT_TIMEBASE_FREQ = 10_000_000;
const NS_PER_TICK = 1_000_000_000 / CLINT_TIMEBASE_FREQ;
const TWO32 = 0x1_0000_0000;

export interface ClintState {
  /** Per hart: mtimecmp as [hi, lo] uint32 halves. */
  timecmpHi: number[];
  timecmpLo: number[];
  msip: number[];
  /** mtime = VIRTUAL ticks + timeDelta (guest writes to mtime move it). */
  timeDelta: number;
}

export interface ClintDevice {
  m: LoopMachine;
  s: ClintState;
  cpus: CpuState[];
  timers: QEMUTimer[];
  /** Wakes a halted hart when its line rises (the scheduler's kick). */
  kick: (cpu: CpuState) => void;
}

/** mtime in 10 MHz ticks. @qemu cpu_riscv_read_rtc */
export function clintReadMtime(d: ClintDevice): number {
  return Math.floor(qemuClockGetNs(d.m.clocks, QEMU_CLOCK_VIRTUAL) / NS_PER_TICK) + d.s.timeDelta;
}

function setIrq(d: ClintDevice, hart: number, irq: number, level: boolean): void {
  const cpu = d.cpus[hart]!;
  const was = (cpu.mip >> irq) & 1;
  cpuSetIrqLevel(cpu, irq, level);
  if (level && !was) d.kick(cpu);
}

/** Re-evaluate hart `hart`'s comparator. @qemu riscv_aclint_mtimer_write_timecmp */
function clintUpdateTimecmp(d: ClintDevice, hart: number): void {
  const hi = d.s.timecmpHi[hart]!;
  const lo = d.s.timecmpLo[hart]!;
  const timer = d.timers[hart]!;
  const rtc = clintReadMtime(d);
  const cmp = hi * TWO32 + lo;
  if (Number.isSafeInteger(cmp) && cmp <= rtc) {
    timerDel(timer);
    setIrq(d, hart, IRQ_M_TIMER, true);
    return;
  }
  setIrq(d, hart, IRQ_M_TIMER, false);
  const next = qemuClockGetNs(d.m.clocks, QEMU_CLOCK_VIRTUAL) + (cmp - rtc) * NS_PER_TICK;
  if (!Number.isSafeInteger(cmp) || !Number.isSafeInteger(next)) {
    timerDel(timer); // beyond any reachable time: QEMU arms it at INT64_MAX
    return;
  }
  timerModNs(timer, next);
}

function mtimerCb(d: ClintDevice, hart: number): void {
  // The timer may fire a little early relative to mtime's tick rounding: re-check.
  clintUpdateTimecmp(d, hart);
}

function swiRegion(d: ClintDevice): MemoryRegion {
  return {
    name: 'riscv.aclint.swi', base: VIRT_CLINT_BASE, size: ACLINT_SWI_SIZE, minAccessSize: 4, maxAccessSize: 4,
    read: (off) => {
      const hart = off >> 2;
      return hart < d.cpus.length ? d.s.msip[hart]! : 0;
    },
    write: (off, _size, value) => {
      const hart = off >> 2;
      if (hart >= d.cpus.length) return;
      d.s.msip[hart] = value & 1;
      setIrq(d, hart, IRQ_M_SOFT, (value & 1) !== 0);
    },
  };
}

function mtimerRegion(d: ClintDevice): MemoryRegion {
  return {
    name: 'riscv.aclint.mtimer', base: VIRT_CLINT_BASE + ACLINT_SWI_SIZE, size: VIRT_CLINT_SIZE - ACLINT_SWI_SIZE,
    minAccessSize: 4, maxAccessSize: 4,
    read: (off) => {
      if (off >= ACLINT_MTIMER_MTIME) {
        const t = clintReadMtime(d);
        return off === ACLINT_MTIMER_MTIME ? t % TWO32 : Math.floor(t / TWO32) % TWO32;
      }
      const hart = off >> 3;
      if (hart >= d.cpus.length) return 0;
      return off & 4 ? d.s.timecmpHi[hart]! : d.s.timecmpLo[hart]!;
    },
    write: (off, _size, value) => {
      const v = value >>> 0;
      if (off >= ACLINT_MTIMER_MTIME) {
        const t = clintReadMtime(d);
        const hi = off === ACLINT_MTIMER_MTIME ? Math.floor(t / TWO32) : v;
        const lo = off === ACLINT_MTIMER_MTIME ? v : t % TWO32;
        d.s.timeDelta += hi * TWO32 + lo - t;
        for (let h = 0; h < d.cpus.length; h++) clintUpdateTimecmp(d, h);
        return;
      }
      const hart = off >> 3;
      if (hart >= d.cpus.length) return;
      if (off & 4) d.s.timecmpHi[hart] = v;
      else d.s.timecmpLo[hart] = v;
      clintUpdateTimecmp(d, hart);
    },
  };
}

/** Create the CLINT for `cpus`; returns the device and its two MMIO regions. */
export function clintCreate(m: LoopMachine, cpus: CpuState[], kick: (cpu: CpuState) => void): { dev: ClintDevice; regions: MemoryRegion[] } {
  const n = cpus.length;
  const d: ClintDevice = {
    m, cpus, kick, timers: [],
    s: { timecmpHi: new Array<number>(n).fill(0), timecmpLo: new Array<number>(n).fill(0), msip: new Array<number>(n).fill(0), timeDelta: 0 },
  };
  for (let h = 0; h < n; h++) d.timers.push(timerNew(m.loop.tlg, QEMU_CLOCK_VIRTUAL, 1, 'riscv_aclint_mtimer_cb', () => mtimerCb(d, h)));
  return { dev: d, regions: [swiRegion(d), mtimerRegion(d)] };
}

/** Reset: comparators 0 (not armed), msip clear, lines low. */
export function clintReset(d: ClintDevice): void {
  for (let h = 0; h < d.cpus.length; h++) {
    d.s.timecmpHi[h] = 0;
    d.s.timecmpLo[h] = 0;
    d.s.msip[h] = 0;
    timerDel(d.timers[h]!);
    cpuSetIrqLevel(d.cpus[h]!, IRQ_M_SOFT, false);
    cpuSetIrqLevel(d.cpus[h]!, IRQ_M_TIMER, false);
  }
  d.s.timeDelta = 0;
}

/**
 * Where clintUpdateTimecmp would arm hart `hart`'s comparator timer now (ns), or -1 when it
 * would not arm it (already due, or beyond any reachable time). A timer armed earlier may expire
 * up to a tick later than this: the expiry depends on the VIRTUAL time of the arming.
 */
export function clintTimecmpDeadline(d: ClintDevice, hart: number): number {
  const cmp = d.s.timecmpHi[hart]! * TWO32 + d.s.timecmpLo[hart]!;
  const rtc = clintReadMtime(d);
  if (Number.isSafeInteger(cmp) && cmp <= rtc) return -1;
  const next = qemuClockGetNs(d.m.clocks, QEMU_CLOCK_VIRTUAL) + (cmp - rtc) * NS_PER_TICK;
  return Number.isSafeInteger(cmp) && Number.isSafeInteger(next) ? next : -1;
}

/**
 * After loading state: the MSWI bits follow each hart's loaded MSIP (QEMU keeps them only in
 * mip), and every comparator is re-armed from the loaded values and the loaded VIRTUAL clock;
 * `expiries` (ns, -1: none), when the stream carried them, put each armed timer back exactly
 * where the source had it.
 */
export function clintPostLoad(d: ClintDevice, expiries: readonly number[] | null = null): void {
  for (let h = 0; h < d.cpus.length; h++) {
    d.s.msip[h] = (d.cpus[h]!.mip >> IRQ_M_SOFT) & 1;
    clintUpdateTimecmp(d, h);
    const at = expiries?.[h] ?? -1;
    if (at >= 0 && timerPending(d.timers[h]!)) timerModNs(d.timers[h]!, at);
  }
}
