// The SiFive PLIC of the virt board (hw/intc/sifive_plic.c) at 0xc000000: per-source priorities
// and pending bits, per-context enables, thresholds and claim/complete. Contexts come in pairs per
// hart ("MS"): M-mode drives the hart's MEIP; the S-mode context exists for the register layout
// but drives nothing (detvm harts have no S-mode). Sources are level-triggered: a claimed source
// is not pending again until it is completed, and re-pends then if its line is still high.

import { type CpuState, IRQ_M_EXT, cpuSetIrqLevel } from '../cpu/index.ts';
import type { MemoryRegion } from '../memory/index.ts';

export const VIRT_PLIC_BASE = 0xc000000;
/** @qemu VIRT_IRQCHIP_NUM_SOURCES (7.2) */
export const PLIC_NUM_SOURCES = 96;
export const PLIC_NUM_PRIORITIES = 7;
const PRIORITY_BASE = 0x0;
const PENDING_BASE = 0x1000;
const ENABLE_BASE = 0x2000;
const ENABLE_STRIDE = 0x80;
const CONTEXT_BASE = 0x200000;
const CONTEXT_STRIDE = 0x1000;
export const VIRT_UART0_IRQ = 10;
export const VIRTIO_IRQ_BASE = 1;

export interface PlicState {
  priority: number[];
  pending: number[];
  claimed: number[];
  /** Line level per source, so a completed source re-pends while still high. */
  level: number[];
  /** enable[context][word] */
  enable: number[][];
  threshold: number[];
}

export interface PlicDevice {
  s: PlicState;
  cpus: CpuState[];
  kick: (cpu: CpuState) => void;
}

export function plicSize(numHarts: number): number {
  return CONTEXT_BASE + CONTEXT_STRIDE * 2 * numHarts;
}

function words(): number {
  return Math.ceil(PLIC_NUM_SOURCES / 32);
}

function bit(arr: number[], irq: number): boolean {
  return ((arr[irq >> 5]! >>> (irq & 31)) & 1) !== 0;
}

function setBit(arr: number[], irq: number, v: boolean): void {
  const w = irq >> 5;
  arr[w] = v ? (arr[w]! | (1 << (irq & 31))) >>> 0 : (arr[w]! & ~(1 << (irq & 31))) >>> 0;
}

/** The best claimable source for `context`, or 0. */
function plicBest(d: PlicDevice, context: number): number {
  const s = d.s;
  let best = 0;
  let bestPrio = s.threshold[context]!;
  for (let irq = 1; irq < PLIC_NUM_SOURCES; irq++) {
    if (!bit(s.pending, irq) || !bit(s.enable[context]!, irq)) continue;
    const p = s.priority[irq]!;
    if (p > bestPrio) {
      best = irq;
      bestPrio = p;
    }
  }
  return best;
}

function plicUpdate(d: PlicDevice): void {
  for (let hart = 0; hart < d.cpus.length; hart++) {
    const cpu = d.cpus[hart]!;
    const level = plicBest(d, 2 * hart) !== 0;
    const was = (cpu.mip >> IRQ_M_EXT) & 1;
    cpuSetIrqLevel(cpu, IRQ_M_EXT, level);
    if (level && !was) d.kick(cpu);
  }
}

/** A device's interrupt line. @qemu sifive_plic_irq_request */
export function plicSetIrq(d: PlicDevice, irq: number, level: boolean): void {
  setBit(d.s.level, irq, level);
  if (!bit(d.s.claimed, irq)) setBit(d.s.pending, irq, level);
  plicUpdate(d);
}

function readReg(d: PlicDevice, off: number): number {
  const s = d.s;
  if (off < PENDING_BASE) {
    const irq = (off - PRIORITY_BASE) >> 2;
    return irq < PLIC_NUM_SOURCES ? s.priority[irq]! : 0;
  }
  if (off < ENABLE_BASE) {
    const w = (off - PENDING_BASE) >> 2;
    return w < words() ? s.pending[w]! : 0;
  }
  if (off < CONTEXT_BASE) {
    const ctx = Math.floor((off - ENABLE_BASE) / ENABLE_STRIDE);
    const w = ((off - ENABLE_BASE) % ENABLE_STRIDE) >> 2;
    return ctx < s.enable.length && w < words() ? s.enable[ctx]![w]! : 0;
  }
  const ctx = Math.floor((off - CONTEXT_BASE) / CONTEXT_STRIDE);
  const reg = (off - CONTEXT_BASE) % CONTEXT_STRIDE;
  if (ctx >= s.threshold.length) return 0;
  if (reg === 0) return s.threshold[ctx]!;
  if (reg === 4) {
    const irq = plicBest(d, ctx);
    if (irq !== 0) {
      setBit(s.pending, irq, false);
      setBit(s.claimed, irq, true);
      plicUpdate(d);
    }
    return irq;
  }
  return 0;
}

function writeReg(d: PlicDevice, off: number, value: number): void {
  const s = d.s;
  const v = value >>> 0;
  if (off < PENDING_BASE) {
    const irq = (off - PRIORITY_BASE) >> 2;
    if (irq > 0 && irq < PLIC_NUM_SOURCES) s.priority[irq] = v & PLIC_NUM_PRIORITIES;
  } else if (off < ENABLE_BASE) {
    return; // pending bits are read-only
  } else if (off < CONTEXT_BASE) {
    const ctx = Math.floor((off - ENABLE_BASE) / ENABLE_STRIDE);
    const w = ((off - ENABLE_BASE) % ENABLE_STRIDE) >> 2;
    if (ctx < s.enable.length && w < words()) s.enable[ctx]![w] = w === 0 ? v & ~1 : v; // source 0 does not exist
  } else {
    const ctx = Math.floor((off - CONTEXT_BASE) / CONTEXT_STRIDE);
    const reg = (off - CONTEXT_BASE) % CONTEXT_STRIDE;
    if (ctx >= s.threshold.length) return;
    if (reg === 0) {
      s.threshold[ctx] = v & PLIC_NUM_PRIORITIES;
    } else if (reg === 4) {
      if (v > 0 && v < PLIC_NUM_SOURCES && bit(s.claimed, v)) {
        setBit(s.claimed, v, false);
        if (bit(s.level, v)) setBit(s.pending, v, true);
      }
    }
  }
  plicUpdate(d);
}

/** Create the PLIC for `cpus`; returns the device and its MMIO region. */
export function plicCreate(cpus: CpuState[], kick: (cpu: CpuState) => void): { dev: PlicDevice; region: MemoryRegion } {
  const contexts = 2 * cpus.length;
  const z = (): number[] => new Array<number>(words()).fill(0);
  const d: PlicDevice = {
    cpus, kick,
    s: {
      priority: new Array<number>(PLIC_NUM_SOURCES).fill(0), pending: z(), claimed: z(), level: z(),
      enable: Array.from({ length: contexts }, z), threshold: new Array<number>(contexts).fill(0),
    },
  };
  const region: MemoryRegion = {
    name: 'riscv.sifive.plic', base: VIRT_PLIC_BASE, size: plicSize(cpus.length), minAccessSize: 4, maxAccessSize: 4,
    read: (off) => readReg(d, off),
    write: (off, _size, value) => writeReg(d, off, value),
  };
  return { dev: d, region };
}

/** Reset every register (lines keep their level: devices lower them on their own reset). */
export function plicReset(d: PlicDevice): void {
  const s = d.s;
  s.priority.fill(0);
  s.pending.fill(0);
  s.claimed.fill(0);
  for (const e of s.enable) e.fill(0);
  s.threshold.fill(0);
  plicUpdate(d);
}

/**
 * After a load: restore the level of source `irq`'s input line, which no section carries (QEMU's
 * PLIC keeps no line state). Pending and claimed bits come from the stream and are left alone.
 */
export function plicPostLoadLine(d: PlicDevice, irq: number, level: boolean): void {
  setBit(d.s.level, irq, level);
}
