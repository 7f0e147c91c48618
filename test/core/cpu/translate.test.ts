// Compiled blocks (translate.ts) must be invisible: hot loops that patch their own code, store
// to dirty-logged or reserved pages, touch MMIO, or run under tiny budgets give exactly what the
// interpreter gives. Method: each program runs with env.jit on and off; the results must agree
// with each other and with the expected values.
import { describe, expect, it } from 'vitest';
import {
  addressSpaceAddRegion,
  addressSpaceLd,
  ramDirtyLogStart,
  ramTestAndClearDirty,
  ramWatchReservation,
} from '../../../core/memory/index.ts';
import { cpuExec, cpuSaveState } from '../../../core/cpu/index.ts';
import * as A from './asm.ts';
import { RAM, makeRig, s32, type Rig } from './support.ts';

const { R } = A;

function both(program: number[], setup: (rig: Rig) => void, drive: (rig: Rig) => void): Rig[] {
  return [true, false].map((jit) => {
    const rig = makeRig(program);
    rig.env.jit = jit;
    setup(rig);
    drive(rig);
    return rig;
  });
}

describe('compiled blocks', () => {
  it('see a store that patches the running loop at the very next pass', () => {
    // 100 passes; pass 50 rewrites slot 9 (`addi a0, a0, 1`) into `addi a0, a0, 100`.
    const patched = A.addi(R.a0, R.a0, 100);
    const program = [
      ...A.li(R.t0, RAM + 36), // 0-1
      ...A.li(R.t1, patched), // 2-3
      A.addi(R.t2, R.zero, 100), // 4: passes left
      A.addi(R.t3, R.zero, 50), // 5
      A.bne(R.t2, R.t3, 8), // 6: loop start; skip the patch except at pass 50
      A.sw(R.t1, R.t0, 0), // 7
      A.addi(R.a1, R.a1, 1), // 8
      A.addi(R.a0, R.a0, 1), // 9 (offset 36): patched
      A.addi(R.t2, R.t2, -1), // 10
      A.bne(R.t2, R.zero, -20), // 11: back to 6
      A.wfi(),
    ];
    const [jit, interp] = both(program, () => undefined, (r) => {
      expect(cpuExec(r.cpu, r.env, 1_000_000)).toBe('halt');
    });
    expect(s32(jit!, R.a0)).toBe(50 + 50 * 100);
    expect(cpuSaveState(jit!.cpu)).toEqual(cpuSaveState(interp!.cpu));
  });

  it('leave stores to dirty-logged pages to the interpreter, which logs them', () => {
    const data = RAM + 0x3000;
    const program = [...A.li(R.a0, data), ...A.li(R.t0, 1000), A.sw(R.t0, R.a0, 0),
      A.addi(R.t0, R.t0, -1), A.bne(R.t0, R.zero, -8), A.wfi(), A.jal(R.zero, -24)];
    const rigs = both(program, (r) => ramDirtyLogStart(r.as), (r) => {
      expect(cpuExec(r.cpu, r.env, 100_000)).toBe('halt');
      expect(ramTestAndClearDirty(r.as, 3)).toBe(true);
      expect(ramTestAndClearDirty(r.as, 3)).toBe(false);
      r.cpu.halted = false;
      r.cpu.x[R.t0] = 500;
      r.cpu.pc = RAM + 16;
      expect(cpuExec(r.cpu, r.env, 100_000)).toBe('halt');
      expect(ramTestAndClearDirty(r.as, 3)).toBe(true);
    });
    expect(cpuSaveState(rigs[0]!.cpu)).toEqual(cpuSaveState(rigs[1]!.cpu));
  });

  it('leave MMIO accesses in hot loops to the interpreter, in order', () => {
    const program = [...A.li(R.a0, 0x1000_0000), ...A.li(R.t0, 300), A.sb(R.t0, R.a0, 0),
      A.lbu(R.a1, R.a0, 5), A.add(R.a2, R.a2, R.a1), A.addi(R.t0, R.t0, -1),
      A.bne(R.t0, R.zero, -16), A.wfi()];
    const outs: number[][] = [];
    const rigs = both(program, (r) => {
      const out: number[] = [];
      outs.push(out);
      addressSpaceAddRegion(r.as, {
        name: 'uart', base: 0x1000_0000, size: 8,
        read: (o) => (o === 5 ? 0x60 : 0),
        write: (o, _s, v) => { if (o === 0) out.push(v); },
      });
    }, (r) => { expect(cpuExec(r.cpu, r.env, 100_000)).toBe('halt'); });
    expect(outs[0]).toEqual(Array.from({ length: 300 }, (_, k) => (300 - k) & 0xff));
    expect(outs[0]).toEqual(outs[1]);
    expect(s32(rigs[0]!, R.a2)).toBe(300 * 0x60);
  });

  it('break another hart’s reservation from a hot loop', () => {
    const data = RAM + 0x5000;
    const program = [...A.li(R.a0, data), ...A.li(R.t0, 200), A.sw(R.t0, R.a0, 0),
      A.addi(R.t0, R.t0, -1), A.bne(R.t0, R.zero, -8), A.wfi()];
    for (const jit of [true, false]) {
      const rig = makeRig(program, { harts: 2 });
      rig.env.jit = jit;
      const holder = rig.cpus[1]!;
      holder.resvAddr = data;
      ramWatchReservation(rig.as, data);
      expect(cpuExec(rig.cpu, rig.env, 100_000)).toBe('halt');
      expect(holder.resvAddr).toBe(-1);
      expect(addressSpaceLd(rig.as, data, 4)).toBe(1);
    }
  });

  it('stop exactly at the budget inside self-looping blocks', () => {
    const program = [...A.li(R.t0, 100_000), A.addi(R.a0, R.a0, 1), A.addi(R.t0, R.t0, -1),
      A.bne(R.t0, R.zero, -8), A.wfi()];
    const rigs = both(program, () => undefined, (r) => {
      for (let k = 0; k < 1000; k++) {
        const before = r.cpu.icount;
        expect(cpuExec(r.cpu, r.env, 1 + (k % 97))).toBe('budget');
        expect(r.cpu.icount - before).toBe(1 + (k % 97));
      }
      expect(cpuExec(r.cpu, r.env, 10_000_000)).toBe('halt');
    });
    expect(cpuSaveState(rigs[0]!.cpu)).toEqual(cpuSaveState(rigs[1]!.cpu));
    expect(rigs[0]!.cpu.icount).toBe(2 + 3 * 100_000 + 1);
  });
});
