// Traps: ECALL/EBREAK/illegal instructions, MRET, interrupt entry (priority MEI > MSI > MTI,
// gated by mstatus.MIE, direct and vectored mtvec), and WFI halting until mie & mip != 0.
// Method: hand-encoded programs; interrupt lines driven with cpuSetIrqLevel between slices.
import { describe, expect, it } from 'vitest';
import {
  IRQ_M_EXT,
  IRQ_M_SOFT,
  IRQ_M_TIMER,
  MCAUSE_INTERRUPT,
  cpuExec,
  cpuHasWork,
  cpuSetIrqLevel,
} from '../../../core/cpu/index.ts';
import * as A from './asm.ts';
import { RAM, makeRig, runProgram, s32, u32 } from './support.ts';

const { R } = A;
const MSTATUS = 0x300,
  MIE = 0x304,
  MEPC = 0x341;

describe('synchronous exceptions', () => {
  it('ECALL from M traps with cause 11, mepc = the ecall, mtval 0, and MPIE = old MIE', () => {
    const rig = runProgram([A.csrrsi(R.zero, MSTATUS, 8), A.ecall(), A.wfi(), A.wfi()], (r) => {
      r.cpu.mtvec = RAM + 12;
    });
    expect([rig.cpu.mcause, rig.cpu.mepc, rig.cpu.mtval, rig.cpu.mstatus]).toEqual([
      11,
      RAM + 4,
      0,
      0x80,
    ]);
  });
  it('EBREAK traps with cause 3 and mtval 0 (QEMU 7.2)', () => {
    const rig = runProgram([A.ebreak(), A.wfi()], (r) => {
      r.cpu.mtvec = RAM + 4;
    });
    expect([rig.cpu.mcause, rig.cpu.mepc, rig.cpu.mtval]).toEqual([3, RAM, 0]);
  });
  it('illegal instructions trap with cause 2 and the instruction bits in mtval', () => {
    const cases: Array<[number, number]> = [
      [0xffffffff, 0xffffffff],
      [0x00000000, 0], // a compressed encoding: QEMU reports its 16 bits
      [0x12344321, 0x4321], // low bits 01: compressed
      [0x0000302f, 0x0000302f], // AMO with funct3 = 3 (RV64 .D)
      [0x02000013 | (1 << 25) | (1 << 12), 0x02001013], // SLLI with shamt[5] set
      [0x10200073, 0x10200073], // SRET: no S-mode
      [0x00003003, 0x00003003], // LD: RV64 only
    ];
    for (const [insn, tval] of cases) {
      const rig = runProgram([insn, A.wfi()], (r) => {
        r.cpu.mtvec = RAM + 4;
      });
      expect([insn, rig.cpu.mcause, rig.cpu.mtval >>> 0]).toEqual([insn, 2, tval >>> 0]);
    }
  });
  it('MRET returns to mepc and restores MIE from MPIE, setting MPIE', () => {
    const rig = runProgram(
      [
        ...A.li(R.t0, RAM + 20),
        A.csrrw(R.zero, MEPC, R.t0),
        A.csrrsi(R.zero, MSTATUS, 0), // 0-3
        A.mret(), // 4 (offset 16)
        A.addi(R.a0, R.zero, 1), // 5 (offset 20)
        A.csrrs(R.a1, MSTATUS, R.zero),
        A.wfi(),
      ],
      (r) => {
        r.cpu.mstatus = 0x80; /* MPIE */
      },
    );
    expect([s32(rig, R.a0), u32(rig, R.a1)]).toEqual([1, 0x1888]);
  });
  it('MRET to a misaligned mepc raises instruction-address-misaligned at the MRET', () => {
    const rig = runProgram(
      [...A.li(R.t0, RAM + 0x102), A.csrrw(R.zero, MEPC, R.t0), A.mret(), A.wfi()],
      (r) => {
        r.cpu.mtvec = RAM + 16;
      },
    );
    expect([rig.cpu.mcause, rig.cpu.mepc, rig.cpu.mtval]).toEqual([0, RAM + 12, RAM + 0x102]);
  });
  it('instruction fetch from unmapped memory faults with cause 1 and mtval = pc', () => {
    const rig = runProgram([...A.li(R.t0, 0x5000_0000), A.jalr(R.zero, R.t0, 0), A.wfi()], (r) => {
      r.cpu.mtvec = RAM + 12;
    });
    expect([rig.cpu.mcause, rig.cpu.mepc, rig.cpu.mtval]).toEqual([1, 0x5000_0000, 0x5000_0000]);
  });
});

describe('interrupts', () => {
  /**
   * Spin at RAM+0 with interrupts on; the handler at RAM+0x100 records mcause in a0, disables
   * all interrupts in mie (else WFI would not halt) and halts.
   */
  function spinner(vectored = false) {
    const prog = new Array<number>(0x100 / 4 + 4).fill(A.wfi());
    prog[0] = A.jal(R.zero, 0); // spin
    prog[0x40] = A.csrrs(R.a0, 0x342, R.zero);
    prog[0x41] = A.csrrw(R.zero, MIE, R.zero);
    prog[0x42] = A.wfi();
    const rig = makeRig(prog);
    rig.cpu.mtvec = RAM + 0x100 + (vectored ? 1 : 0);
    rig.cpu.mie = 0x888;
    rig.cpu.mstatus = 0x8;
    return rig;
  }
  it('are taken in MEI, MSI, MTI priority order with mepc = the next instruction', () => {
    for (const [lines, cause] of [
      [[IRQ_M_TIMER, IRQ_M_SOFT, IRQ_M_EXT], 11],
      [[IRQ_M_TIMER, IRQ_M_SOFT], 3],
      [[IRQ_M_TIMER], 7],
    ] as const) {
      const rig = spinner();
      expect(cpuExec(rig.cpu, rig.env, 10)).toBe('budget');
      for (const l of lines) cpuSetIrqLevel(rig.cpu, l, 1);
      expect(cpuExec(rig.cpu, rig.env, 100)).toBe('halt');
      expect(rig.cpu.mcause >>> 0).toBe((MCAUSE_INTERRUPT | cause) >>> 0);
      expect(rig.cpu.mepc).toBe(RAM);
      expect(rig.cpu.mstatus).toBe(0x80); // MIE cleared, MPIE set
    }
  });
  it('are not taken while mstatus.MIE or the mie bit is clear', () => {
    const rig = spinner();
    rig.cpu.mstatus = 0;
    cpuSetIrqLevel(rig.cpu, IRQ_M_TIMER, 1);
    expect(cpuExec(rig.cpu, rig.env, 50)).toBe('budget');
    rig.cpu.mstatus = 0x8;
    rig.cpu.mie = 0x8;
    expect(cpuExec(rig.cpu, rig.env, 50)).toBe('budget');
    cpuSetIrqLevel(rig.cpu, IRQ_M_TIMER, 0);
    cpuSetIrqLevel(rig.cpu, IRQ_M_SOFT, 1);
    expect(cpuExec(rig.cpu, rig.env, 50)).toBe('halt');
    expect(rig.cpu.mcause >>> 0).toBe((MCAUSE_INTERRUPT | 3) >>> 0);
  });
  it('use mtvec base + 4 * cause in vectored mode (exceptions still go to base)', () => {
    const rig = spinner(true);
    cpuSetIrqLevel(rig.cpu, IRQ_M_TIMER, 1);
    expect(cpuExec(rig.cpu, rig.env, 0)).toBe('budget'); // takes the interrupt, runs nothing
    expect(rig.cpu.pc).toBe(RAM + 0x100 + 4 * 7);
    const r2 = runProgram([A.ecall(), A.wfi(), A.wfi(), A.wfi()], (r) => {
      r.cpu.mtvec = RAM + 4 + 1;
    });
    expect([r2.cpu.mcause, r2.cpu.pc]).toEqual([11, RAM + 8]);
  });
});

describe('WFI', () => {
  it('halts with nothing pending-and-enabled; wakes on mie & mip even with MIE clear', () => {
    const rig = makeRig([A.wfi(), A.addi(R.a0, R.a0, 1), A.jal(R.zero, 0)]);
    rig.cpu.mie = 1 << IRQ_M_TIMER;
    expect(cpuExec(rig.cpu, rig.env, 100)).toBe('halt');
    expect([rig.cpu.halted, rig.cpu.pc, rig.cpu.icount]).toEqual([true, RAM + 4, 1]);
    expect(cpuExec(rig.cpu, rig.env, 100)).toBe('halt'); // still nothing: no instruction runs
    expect(rig.cpu.icount).toBe(1);
    cpuSetIrqLevel(rig.cpu, IRQ_M_SOFT, 1); // pending but not enabled in mie
    expect(cpuHasWork(rig.cpu)).toBe(false);
    expect(cpuExec(rig.cpu, rig.env, 100)).toBe('halt');
    cpuSetIrqLevel(rig.cpu, IRQ_M_TIMER, 1);
    expect(cpuHasWork(rig.cpu)).toBe(true);
    expect(cpuExec(rig.cpu, rig.env, 100)).toBe('budget'); // MIE=0: resumes after WFI, no trap
    expect(s32(rig, R.a0)).toBe(1);
    expect(rig.cpu.mcause).toBe(0);
  });
  it('does not halt when an enabled interrupt is already pending', () => {
    const rig = makeRig([A.wfi(), A.addi(R.a0, R.a0, 1), A.jal(R.zero, 0)]);
    rig.cpu.mie = 1 << IRQ_M_EXT;
    cpuSetIrqLevel(rig.cpu, IRQ_M_EXT, 1);
    expect(cpuExec(rig.cpu, rig.env, 10)).toBe('budget');
    expect(s32(rig, R.a0)).toBe(1);
  });
  it('takes the interrupt on wake-up when MIE is set, with mepc after the WFI', () => {
    const rig = makeRig([
      A.csrrsi(R.zero, MSTATUS, 8),
      A.wfi(),
      A.wfi(), // handler at 12:
      A.csrrs(R.a0, MEPC, R.zero),
      A.csrrw(R.zero, MIE, R.zero),
      A.wfi(),
    ]);
    rig.cpu.mtvec = RAM + 12;
    rig.cpu.mie = 1 << IRQ_M_TIMER;
    expect(cpuExec(rig.cpu, rig.env, 100)).toBe('halt');
    expect(rig.cpu.pc).toBe(RAM + 8);
    cpuSetIrqLevel(rig.cpu, IRQ_M_TIMER, 1);
    expect(cpuExec(rig.cpu, rig.env, 100)).toBe('halt');
    expect(u32(rig, R.a0)).toBe(RAM + 8);
  });
});
