// The same guest binaries on real qemu-system-riscv32 (-M virt -bios none -icount shift=0) and on
// detvm produce the same serial output, byte for byte: the mixed workload's checksum line, and the
// demo guest's banner and first ticks on one hart. Skipped, with a message, when QEMU is not
// installed (apt-get install qemu-system-misc).
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createMachine } from '../../index.ts';

const haveQemu = spawnSync('qemu-system-riscv32', ['-version']).status === 0;
if (!haveQemu) console.warn('qemu-compare: qemu-system-riscv32 is not installed; skipping (apt-get install qemu-system-misc)');

function qemuSerial(kernel: string, timeoutMs: number): string {
  const r = spawnSync('qemu-system-riscv32', [
    '-M', 'virt', '-bios', 'none', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-icount', 'shift=0',
    '-kernel', kernel,
  ], { timeout: timeoutMs, encoding: 'latin1' });
  return r.stdout;
}

function detvmSerial(kernel: string, ns: number): string {
  const vm = createMachine({ kernel: { name: kernel, bytes: readFileSync(kernel) } });
  vm.runUntil(() => vm.exitStatus() !== null || vm.kernel.clocks.simNs >= ns, { maxIterations: 1e7 });
  return vm.console.text();
}

describe.skipIf(!haveQemu)('serial output against real QEMU 7.2', () => {
  it('mixed.elf: the checksum line', () => {
    const q = qemuSerial('guests/bin/mixed.elf', 60_000);
    expect(q).toMatch(/^mixed: checksum 0x[0-9a-f]{8}\r\n$/);
    expect(detvmSerial('guests/bin/mixed.elf', 10_000_000_000)).toBe(q);
  }, 90_000);

  it('demo.elf on one hart: the banner and the first ticks', () => {
    const q = qemuSerial('guests/bin/demo.elf', 1_500);
    const lines = q.split('\r\n').filter((l) => l.length > 0);
    expect(lines.length).toBeGreaterThan(3);
    const d = detvmSerial('guests/bin/demo.elf', 5_000_000_000);
    const n = lines.length - 1; // the last line QEMU printed may be cut by the timeout
    expect(d.split('\r\n').slice(0, n)).toEqual(lines.slice(0, n));
  }, 30_000);
});
