// The virt machine end to end (core/machine.ts): a hand-assembled guest boots through QEMU's
// MROM reset vector, writes to the UART and powers off through sifive_test; WFI with the CLINT
// timer warps virtual time. Method: raw kernel images from instruction words, a capture chardev.
import { describe, expect, it } from 'vitest';
import * as A from '../cpu/asm.ts';
import { program, runToExit, virtWithSerial } from '../../support/virt.ts';
import { QEMU_CLOCK_VIRTUAL, qemuClockGetNs } from '../../../core/loop/index.ts';

const { R } = A;

function putc(ch: string): number[] {
  return [A.addi(R.t1, R.zero, ch.charCodeAt(0)), A.sb(R.t1, R.t0, 0)];
}

describe('virt machine', () => {
  it('boots at the MROM, prints on the UART and powers off with sifive_test', () => {
    const words = [
      A.lui(R.t0, 0x10000),
      ...putc('H'), ...putc('i'), ...putc('\n'),
      A.lui(R.t2, 0x100), // 0x100000
      A.lui(R.t3, 0x5), A.addi(R.t3, R.t3, 0x555),
      A.sw(R.t3, R.t2, 0),
      A.jal(R.zero, 0),
    ];
    const { m, serial } = virtWithSerial(program(words));
    expect(m.runstate.current).toBe('running');
    expect(runToExit(m)).toBe(0);
    expect(serial()).toBe('Hi\n');
    expect(m.cpus[0]!.x[R.a0]).toBe(0); // a0 = mhartid from the reset vector
  });

  it('fails with the exit code given to sifive_test', () => {
    const words = [
      A.lui(R.t2, 0x100),
      A.lui(R.t3, 0x2a3), A.addi(R.t3, R.t3, 0x333), // (42 << 16) | 0x3333 = 0x2a3333
      A.sw(R.t3, R.t2, 0),
      A.jal(R.zero, 0),
    ];
    const { m } = virtWithSerial(program(words));
    expect(runToExit(m)).toBe(42);
  });

  it('WFI with a CLINT timer sleeps: virtual time warps 1 s without executing', () => {
    // mtimecmp(0) = mtime + 10,000,000 ticks (1 s); enable MTIE; wfi; then power off.
    const words = [
      A.lui(R.t0, 0x200c), A.addi(R.t0, R.t0, -8), // 0x200bff8 mtime
      A.lw(R.t1, R.t0, 0),
      A.lui(R.t2, 0x989), A.addi(R.t2, R.t2, 0x680), // 10,000,000
      A.add(R.t1, R.t1, R.t2),
      A.lui(R.t3, 0x2004), // mtimecmp hart 0
      A.addi(R.t4, R.zero, 0),
      A.sw(R.t4, R.t3, 4), // hi = 0 first
      A.sw(R.t1, R.t3, 0),
      A.addi(R.t5, R.zero, 0x80), A.csrrs(R.zero, 0x304, R.t5), // mie.MTIE
      A.wfi(),
      A.lui(R.t2, 0x100), A.lui(R.t3, 0x5), A.addi(R.t3, R.t3, 0x555), A.sw(R.t3, R.t2, 0),
      A.jal(R.zero, 0),
    ];
    const { m } = virtWithSerial(program(words));
    expect(runToExit(m)).toBe(0);
    const v = qemuClockGetNs(m.clocks, QEMU_CLOCK_VIRTUAL);
    expect(v).toBeGreaterThanOrEqual(1_000_000_000);
    expect(v).toBeLessThan(1_000_001_000);
    expect(m.clocks.icount).toBeLessThan(100);
  });
});
