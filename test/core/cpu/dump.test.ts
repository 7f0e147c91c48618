// `info registers` text: byte-for-byte QEMU 7.2's riscv32 layout, checked against the recorded
// transcript (shared/conformance/hmp-info-registers.rx.bin) with the transcript's register values
// loaded into a detvm hart. The only expected difference is mstatus, whose MPP reads as M (3)
// on detvm's M-only hart (0x1800) where QEMU's hart (with U-mode) shows 0.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cpuCreate, cpuDumpState, type CpuState } from '../../../core/cpu/index.ts';

const RX = fileURLToPath(
  new URL('../../fixtures/qemu-7.2/conformance/hmp-info-registers.rx.bin', import.meta.url),
);

/** The two `info registers` outputs in the transcript (from "\r\nCPU#0" up to the prompt). */
function qemuDumps(): string[] {
  const text = readFileSync(RX, 'latin1');
  const out: string[] = [];
  let at = 0;
  for (;;) {
    const start = text.indexOf('\r\nCPU#0\r\n', at);
    if (start < 0) return out;
    const end = text.indexOf('(qemu) ', start);
    out.push(text.slice(start, end));
    at = end;
  }
}

/** A hart holding the register values of the transcript's dump. */
function hartFrom(dump: string): CpuState {
  const cpu = cpuCreate(0, 0);
  const val = (name: string): number => {
    const m = new RegExp(` ${name.replace('/', '\\/')} +([0-9a-f]{8})`).exec(dump);
    if (!m) throw new Error(`no ${name} in transcript`);
    return parseInt(m[1]!, 16);
  };
  cpu.pc = val('pc');
  cpu.mip = val('mip');
  for (let r = 1; r < 32; r++) {
    const m = new RegExp(` x${r}/\\w+ +([0-9a-f]{8})`).exec(dump);
    cpu.x[r] = parseInt(m![1]!, 16) | 0;
  }
  return cpu;
}

const toMonitor = (cpu: CpuState): string =>
  `\r\nCPU#${cpu.cpuIndex}\r\n${cpuDumpState(cpu).replaceAll('\n', '\r\n')}`;

describe.skipIf(!existsSync(RX))('cpuDumpState', () => {
  it('matches QEMU 7.2 byte for byte except mstatus.MPP, including the mideleg side effect', () => {
    const [first, second] = qemuDumps();
    expect(first).toBeDefined();
    expect(second).toBeDefined();
    const cpu = hartFrom(first!);
    const mine1 = toMonitor(cpu);
    expect(mine1).toBe(first!.replace(' mstatus  00000000', ' mstatus  00001800'));
    const cpu2 = hartFrom(second!);
    cpu2.mideleg = cpu.mideleg; // the same hart, dumped a second time
    expect(cpu.mideleg).toBe(0x1444);
    expect(toMonitor(cpu2)).toBe(second!.replace(' mstatus  00000000', ' mstatus  00001800'));
  });
  it('prints every line with a leading space and 8 or 16 hex digits', () => {
    const text = cpuDumpState(cpuCreate(3, 0x8000_0000));
    const lines = text.split('\n');
    expect(lines.at(-1)).toBe('');
    expect(lines).toHaveLength(2 + 27 + 8 + 8 + 1);
    expect(lines[1]).toBe(' pc       80000000');
    expect(lines[2]).toBe(' mhartid  00000003');
  });
});
