// A minimal stand-in for the virt board, enough to run detvm's guests in CPU tests: a CLINT
// (msip, mtimecmp, mtime at 10 MHz), an ns16550a transmit side, sifive_test, and a round-robin
// loop over the harts whose virtual time advances 1 ns per instruction and warps to the next
// mtimecmp when every hart sleeps. The real machine (core/system, core/hw) is the lead's.
import {
  addressSpaceAddRegion,
  addressSpaceCreate,
  loadKernel,
  type AddressSpace,
} from '../../core/memory/index.ts';
import {
  IRQ_M_SOFT,
  IRQ_M_TIMER,
  cpuCreate,
  cpuEnvCreate,
  cpuExec,
  cpuHasWork,
  cpuSetIrqLevel,
  type CpuEnv,
  type CpuState,
} from '../../core/cpu/index.ts';

export interface FakeVirt {
  as: AddressSpace;
  cpus: CpuState[];
  env: CpuEnv;
  uart: number[];
  /** Last value written to sifive_test, or null. */
  finisher: number | null;
  nowNs: number;
  mtimecmp: number[];
}

const NS_PER_TICK = 100; // 10 MHz

export function fakeVirtCreate(elf: Uint8Array, harts = 1, ramSize = 16 << 20): FakeVirt {
  const as = addressSpaceCreate(ramSize);
  const { entry } = loadKernel(as, elf, 'guest.elf');
  const cpus = Array.from({ length: harts }, (_, i) => cpuCreate(i, entry));
  const m: FakeVirt = {
    as,
    cpus,
    env: undefined as unknown as CpuEnv,
    uart: [],
    finisher: null,
    nowNs: 0,
    mtimecmp: cpus.map(() => Number.MAX_SAFE_INTEGER),
  };
  const mtime = (): number => Math.floor(m.nowNs / NS_PER_TICK);
  m.env = cpuEnvCreate(as, mtime, cpus);
  const updateTimer = (h: number): void =>
    cpuSetIrqLevel(cpus[h]!, IRQ_M_TIMER, mtime() >= m.mtimecmp[h]!);
  addressSpaceAddRegion(as, {
    name: 'uart',
    base: 0x1000_0000,
    size: 0x100,
    read: (off) => (off === 5 ? 0x60 : 0),
    write: (off, _s, v) => {
      if (off === 0) m.uart.push(v & 0xff);
    },
  });
  addressSpaceAddRegion(as, {
    name: 'sifive_test',
    base: 0x10_0000,
    size: 0x1000,
    read: () => 0,
    write: (_o, _s, v) => {
      m.finisher = v;
      for (const c of cpus) c.exitRequest = true;
    },
  });
  addressSpaceAddRegion(as, {
    name: 'clint',
    base: 0x200_0000,
    size: 0x1_0000,
    read: (off) => {
      if (off < 0x4000) return (cpus[off >> 2]!.mip >> IRQ_M_SOFT) & 1;
      if (off === 0xbff8) return mtime() % 2 ** 32;
      if (off === 0xbffc) return Math.floor(mtime() / 2 ** 32);
      const h = (off - 0x4000) >> 3;
      const v = m.mtimecmp[h]!;
      return off & 4 ? Math.floor(v / 2 ** 32) : v % 2 ** 32;
    },
    write: (off, _s, v) => {
      if (off < 0x4000) {
        cpuSetIrqLevel(cpus[off >> 2]!, IRQ_M_SOFT, v & 1);
        return;
      }
      const h = (off - 0x4000) >> 3;
      const old = m.mtimecmp[h]!;
      m.mtimecmp[h] =
        off & 4 ? v * 2 ** 32 + (old % 2 ** 32) : Math.floor(old / 2 ** 32) * 2 ** 32 + v;
      updateTimer(h);
    },
  });
  return m;
}

/**
 * Run round-robin slices of `sliceInsns` until `done()` or sifive_test is written, or `maxNs`
 * of virtual time passes. Returns the virtual time reached.
 */
export function fakeVirtRun(
  m: FakeVirt,
  done: () => boolean,
  maxNs: number,
  sliceInsns = 100_000,
): number {
  while (m.finisher === null && !done() && m.nowNs < maxNs) {
    let ran = 0;
    for (const cpu of m.cpus) {
      const before = cpu.icount;
      cpuExec(cpu, m.env, sliceInsns);
      ran += cpu.icount - before;
      if (m.finisher !== null) break;
    }
    m.nowNs += ran;
    if (m.finisher === null && !done() && m.cpus.every((c) => c.halted && !cpuHasWork(c))) {
      const next = Math.min(...m.mtimecmp) * NS_PER_TICK;
      if (next > maxNs) break;
      m.nowNs = Math.max(m.nowNs, next);
    }
    m.cpus.forEach((c, h) =>
      cpuSetIrqLevel(c, IRQ_M_TIMER, Math.floor(m.nowNs / NS_PER_TICK) >= m.mtimecmp[h]!),
    );
  }
  return m.nowNs;
}

export const uartText = (m: FakeVirt): string => String.fromCharCode(...m.uart);
