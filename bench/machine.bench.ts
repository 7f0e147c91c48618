// Whole-machine guest speed (issue 3): busyloop.elf and mixed.elf run to power-off on a full virt
// machine (scheduler, icount, devices), in MIPS, next to real qemu-system-riscv32 -icount shift=0
// on the same binaries when installed (wall time of the process, with the ratio); and the memory
// of 100 idle machines with -m 256M.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createMachine, type DetvmMachine } from '../index.ts';
import { type BenchRow, timeMs } from './harness.ts';

function runDetvm(kernel: string): { ms: number; insns: number } {
  const bytes = readFileSync(kernel);
  let vm: DetvmMachine | null = null;
  const ms0 = performance.now();
  vm = createMachine({ kernel: { name: kernel, bytes } });
  vm.runUntil(() => vm!.exitStatus() !== null, { maxIterations: 1e8 });
  return { ms: performance.now() - ms0, insns: vm.kernel.clocks.icount };
}

function runQemu(kernel: string): number | null {
  if (spawnSync('qemu-system-riscv32', ['-version']).status !== 0) return null;
  const t0 = performance.now();
  const r = spawnSync('qemu-system-riscv32', ['-M', 'virt', '-bios', 'none', '-display', 'none', '-monitor', 'none',
    '-serial', 'null', '-icount', 'shift=0', '-kernel', kernel], { timeout: 600_000 });
  if (r.status !== 0) return null;
  return performance.now() - t0;
}

export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const name of ['busyloop', 'mixed']) {
    const kernel = `guests/bin/${name}.elf`;
    runDetvm(kernel); // warm-up
    const d = runDetvm(kernel);
    const mips = d.insns / d.ms / 1000;
    rows.push({
      name: `${name}.elf on the virt machine`, value: mips, unit: 'MIPS',
      ...(name === 'busyloop' ? { target: '>= 150 MIPS', pass: mips >= 150 } : {}),
      note: `${d.insns} insns in ${d.ms.toFixed(0)} ms`,
    });
    const q = runQemu(kernel);
    if (q === null) {
      rows.push({ name: `${name}.elf on QEMU 7.2 -icount shift=0`, value: NaN, unit: '', note: 'qemu-system-riscv32 not installed' });
    } else {
      rows.push({ name: `${name}.elf on QEMU 7.2 -icount shift=0`, value: d.insns / q / 1000, unit: 'MIPS', note: `${q.toFixed(0)} ms wall, process start included` });
      rows.push({ name: `${name}.elf: detvm / QEMU speed`, value: q / d.ms, unit: 'x' });
    }
  }
  // Memory: 100 idle machines, -m 256M, guest loaded but not started (-S).
  const demo = readFileSync('guests/bin/demo.elf');
  globalThis.gc?.();
  const before = process.memoryUsage();
  const keep: DetvmMachine[] = [];
  const ms = await timeMs(() => {
    for (let i = 0; i < 100; i++) keep.push(createMachine({ memory: '256M', kernel: { name: 'demo.elf', bytes: demo }, startPaused: true }));
  });
  globalThis.gc?.();
  const after = process.memoryUsage();
  const mib = (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / 2 ** 20;
  rows.push({ name: '100 idle virt machines, -m 256M', value: mib, unit: 'MiB', target: '< 200 MiB', pass: mib < 200, note: `created in ${ms.toFixed(0)} ms; ${keep.length} alive` });
  return rows;
}
