// CPU and memory benchmarks: MIPS of guests/bin/busyloop.elf (1e8 × addi/addi/bnez) and
// guests/bin/mixed.elf (loads/stores, mul/div, branches, calls) run through cpuExec in 10M-insn
// slices, with compiled blocks (the default) and interpreter only, and the memory cost of 100
// idle 256 MiB machines (address space + hart, one page of code run).
// Run: npx tsx bench/run.ts cpu
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  addressSpaceAddRegion, addressSpaceCreate, addressSpaceWrite, loadKernel, RAM_BASE,
} from '../core/memory/index.ts';
import { cpuCreate, cpuEnvCreate, cpuExec } from '../core/cpu/index.ts';
import type { BenchRow } from './harness.ts';

const guest = (name: string): Uint8Array =>
  readFileSync(fileURLToPath(new URL(`../guests/bin/${name}`, import.meta.url)));

/** Run a guest to its sifive_test write; returns instructions, wall ms and CPU ms. */
function runGuest(name: string, jit: boolean): { insns: number; wallMs: number; cpuMs: number } {
  const as = addressSpaceCreate(64 << 20);
  const { entry } = loadKernel(as, guest(name), name);
  const cpu = cpuCreate(0, entry);
  const env = cpuEnvCreate(as, () => 0, [cpu]);
  env.jit = jit;
  let finisher: number | null = null;
  let uart = '';
  addressSpaceAddRegion(as, {
    name: 'sifive_test', base: 0x10_0000, size: 0x1000, read: () => 0,
    write: (_o, _s, v) => { finisher = v; cpu.exitRequest = true; },
  });
  addressSpaceAddRegion(as, {
    name: 'uart', base: 0x1000_0000, size: 0x100, read: (o) => (o === 5 ? 0x60 : 0),
    write: (o, _s, v) => { if (o === 0) uart += String.fromCharCode(v); },
  });
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let slices = 0; finisher === null; slices++) {
    if (slices > 10_000) throw new Error(`${name} did not power off`);
    cpuExec(cpu, env, 10_000_000);
  }
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  if (finisher !== 0x5555) throw new Error(`${name} powered off with ${String(finisher)}`);
  if (name === 'mixed.elf' && !uart.startsWith('mixed: checksum')) {
    throw new Error(`mixed printed ${JSON.stringify(uart)}`);
  }
  return { insns: cpu.icount, wallMs, cpuMs: (c.user + c.system) / 1000 };
}

function mipsRows(
  name: string, label: string, targetMips: number | null, n: number, jit = true,
): BenchRow[] {
  const results = Array.from({ length: n }, () => runGuest(name, jit));
  const best = results.reduce((a, b) => (b.insns / b.wallMs > a.insns / a.wallMs ? b : a));
  const mips = best.insns / best.wallMs / 1000;
  const cpuMips = best.insns / best.cpuMs / 1000;
  const row: BenchRow = {
    name: label,
    value: mips,
    unit: 'MIPS',
    note: `${best.insns} insns; best wall of ${n}; by CPU time ${cpuMips.toFixed(0)} MIPS`,
  };
  if (targetMips !== null) {
    row.target = `>= ${targetMips} MIPS`;
    row.pass = mips >= targetMips;
  }
  return [row];
}

function idleMemoryRow(): BenchRow {
  const MiB = 1 << 20;
  globalThis.gc?.();
  const before = process.memoryUsage();
  const keep: unknown[] = [];
  for (let i = 0; i < 100; i++) {
    const as = addressSpaceCreate(256 * MiB);
    // A guest that sets a register and parks in WFI: one code page written and decoded.
    const code = [0x13, 0x05, 0x10, 0x00, 0x73, 0x00, 0x50, 0x10]; // li a0, 1; wfi
    addressSpaceWrite(as, RAM_BASE, Uint8Array.from(code));
    const cpu = cpuCreate(0, RAM_BASE);
    cpuExec(cpu, cpuEnvCreate(as, () => 0, [cpu]), 100);
    keep.push(as, cpu);
  }
  globalThis.gc?.();
  const after = process.memoryUsage();
  const grown = after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers;
  return {
    name: '100 idle -m 256M machines (RAM + hart)',
    value: grown / MiB,
    unit: 'MiB',
    target: '< 200 MiB',
    pass: grown < 200 * MiB && keep.length === 200,
    note: 'heapUsed + arrayBuffers growth; each ran 2 instructions from one page',
  };
}

export async function run(): Promise<BenchRow[]> {
  return [
    ...mipsRows('busyloop.elf', 'busy loop (addi/addi/bnez)', 150, 3),
    ...mipsRows('mixed.elf', 'mixed workload (mixed.elf)', null, 3),
    ...mipsRows('busyloop.elf', 'busy loop, interpreter only (jit: false)', null, 2, false),
    ...mipsRows('mixed.elf', 'mixed, interpreter only (jit: false)', null, 2, false),
    idleMemoryRow(),
  ];
}
