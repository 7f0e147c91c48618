// The sifive_test finisher at 0x100000 (hw/misc/sifive_test.c): the guest writes
// (code << 16) | status; 0x5555 powers off, 0x3333 fails with exit code `code`, 0x7777 resets.
// QEMU 7.2 calls exit() for pass/fail: no SHUTDOWN event, the QMP socket just closes. detvm
// does the same through an exit request the main loop takes at its next check, so the run ends
// in order (replay and traces see it) but clients observe what QEMU's show.

import type { MemoryRegion } from '../memory/index.ts';

export const VIRT_TEST_BASE = 0x100000;
export const VIRT_TEST_SIZE = 0x1000;
export const FINISHER_FAIL = 0x3333;
export const FINISHER_PASS = 0x5555;
export const FINISHER_RESET = 0x7777;

export interface SifiveTestHooks {
  /** End the process with exit status `code` (0 for pass). */
  shutdown: (code: number) => void;
  reset: () => void;
}

/** The finisher's MMIO region. Writes of other status values are ignored, as in QEMU. */
export function sifiveTestRegion(hooks: SifiveTestHooks): MemoryRegion {
  return {
    name: 'riscv.sifive.test', base: VIRT_TEST_BASE, size: VIRT_TEST_SIZE, minAccessSize: 2, maxAccessSize: 4,
    read: () => 0,
    write: (off, _size, value) => {
      if (off !== 0) return;
      const status = value & 0xffff;
      const code = (value >>> 16) & 0xffff;
      if (status === FINISHER_FAIL) hooks.shutdown(code);
      else if (status === FINISHER_PASS) hooks.shutdown(0);
      else if (status === FINISHER_RESET) hooks.reset();
    },
  };
}
