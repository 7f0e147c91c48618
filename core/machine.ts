// The riscv32 "virt" machine (hw/riscv/virt.c + softmmu/vl.c machine init, QEMU 7.2): memory
// map, harts, devices, the kernel loader with QEMU's MROM reset vector, and the wiring of the
// main loop to the run-state and vCPU layers. Top of core/: it imports every lower layer.
// Memory map: MROM 0x1000, sifive_test 0x100000, CLINT 0x2000000, PLIC 0xc000000,
// UART0 0x10000000 (PLIC source 10), virtio-mmio 0x10001000 + 0x1000·i (sources 1..8; virt-virtio.ts),
// RAM 0x80000000.

import { assert } from './util/index.ts';
import {
  type LoopConfig, type LoopMachine, loopMachineCreate, QEMU_CLOCK_VIRTUAL, qemuClockGetNs,
} from './loop/index.ts';
import {
  type AddressSpace, addressSpaceAddRegion, addressSpaceAddRom, addressSpaceCreate, loadKernel, RAM_BASE, ramDiscardAll,
  type LoadedKernel,
} from './memory/index.ts';
import { type CpuState, cpuCreate, cpuEnvCreate, cpuReset, DEFAULT_RSTVEC } from './cpu/index.ts';
import type { Chardev } from './char/index.ts';
import {
  type SystemMachine, type Vcpu, type ShutdownAction, type RebootAction, runstateCreate, systemStateCreate,
  vcpuCreate, rrInstallHooks, mainLoopShouldExit, qemuCpuKick, qemuRegisterReset, qemuSystemResetRequest,
  qemuSystemExitRequest, qemuAddVmChangeStateHandlerPrio, vmStart,
} from './system/index.ts';
import {
  type SerialDevice, type ClintDevice, type PlicDevice, serialMmInit, serialReset, serialIoportRead, serialIoportWrite, clintCreate, clintReadMtime,
  clintReset, plicCreate, plicReset, plicSetIrq, sifiveTestRegion, VIRT_UART0_IRQ, plicPostLoadLine,
  serialIrqLevel,
} from './hw/index.ts';
import { TRACE_CONTROL, traceEvent } from './trace/index.ts';
import { type VirtVirtio, virtVirtioCreate } from './virt-virtio.ts';
import {
  type MigrationState, migrationMachineInit, virtMigrationInit,
} from './migration/index.ts';

export const VIRT_MROM_BASE = 0x1000;
export const VIRT_MROM_SIZE = 0xf000;
export const VIRT_UART0_BASE = 0x10000000;
export const VIRT_UART0_SIZE = 0x100;
/** @qemu hw/riscv/virt.c: the UART's reference clock (3.6864 MHz × 108.28...) */
export const VIRT_UART_BAUDBASE = 399193;
export const VIRT_DEFAULT_RAM = 128 * 1024 * 1024;
export const VIRT_CPUS_MAX = 8;

export interface VirtConfig extends LoopConfig {
  /** Number of harts (-smp), 1..8. */
  smp?: number;
  /** RAM size in bytes (-m), default 128 MiB. */
  ramBytes?: number;
  /** The -kernel image and its name (for errors). */
  kernel?: { name: string; bytes: Uint8Array } | null;
  /** Chardev of the first UART (-serial), or null for none. */
  serial?: Chardev | null;
  /** Alternatively, make the UART's chardev once the machine (and its loop) exists. */
  serialFactory?: ((m: VirtMachine) => Chardev | null) | null;
  /** -icount shift (detvm always counts instructions; default 0: 1 ns per instruction). */
  icountShift?: number;
  /** false with -S: stay in prelaunch until `cont`. */
  autostart?: boolean;
  shutdownAction?: ShutdownAction;
  rebootAction?: RebootAction;
  /** -name */
  name?: string | null;
}

export interface VirtMachine extends SystemMachine {
  as: AddressSpace;
  cpus: CpuState[];
  serial: SerialDevice | null;
  clint: ClintDevice;
  plic: PlicDevice;
  kernel: LoadedKernel | null;
  name: string | null;
  smp: number;
  /** The VIRTUAL clock when the VM last stopped (the clock device's change-state handler). */
  clockAtStopNs: number | null;
  /** The savevm registry with every section, and the outgoing and incoming migrations. */
  migration: MigrationState;
  /** The eight virtio-mmio transports and the virtio-blk devices plugged into them. */
  virtio: VirtVirtio;
}

/** QEMU 7.2's MROM reset vector for a 32-bit hart: a0 = mhartid, a1 = fdt, jump to the entry. */
function resetVector(entry: number, fdtAddr: number): Uint8Array {
  const words = [
    0x00000297, // auipc t0, 0
    0x02828613, // addi  a2, t0, 40 (fw_dyn)
    0xf1402573, // csrr  a0, mhartid
    0x0202a583, // lw    a1, 32(t0)
    0x0182a283, // lw    t0, 24(t0)
    0x00028067, // jr    t0
    entry >>> 0, 0, // start: .dword
    fdtAddr >>> 0, 0, // fdt_laddr: .dword
  ];
  const out = new Uint8Array(words.length * 4);
  const dv = new DataView(out.buffer);
  words.forEach((w, i) => dv.setUint32(i * 4, w, true));
  return out;
}

function vcpuOf(m: VirtMachine, cpu: CpuState): Vcpu {
  return m.sys.vcpus[cpu.cpuIndex]!;
}

/**
 * Build the virt machine. Throws an Error with a message naming the file when the kernel does
 * not load (wrong class or machine, segments outside RAM), and for impossible configurations.
 */
export function virtMachineCreate(cfg: VirtConfig = {}): VirtMachine {
  const smp = cfg.smp ?? 1;
  if (!Number.isInteger(smp) || smp < 1 || smp > VIRT_CPUS_MAX) {
    throw new RangeError(`Invalid SMP CPUs ${smp}. The max CPUs supported by machine 'virt' is ${VIRT_CPUS_MAX}`);
  }
  const ramBytes = cfg.ramBytes ?? VIRT_DEFAULT_RAM;
  const lm: LoopMachine = loopMachineCreate({
    ...cfg,
    clock: { ...cfg.clock, icountShift: cfg.icountShift ?? cfg.clock?.icountShift ?? 0 },
  });
  const m = lm as VirtMachine;
  m.runstate = runstateCreate();
  m.sys = systemStateCreate();
  m.sys.autostart = cfg.autostart ?? true;
  m.sys.shutdownAction = cfg.shutdownAction ?? 'poweroff';
  m.sys.rebootAction = cfg.rebootAction ?? 'reset';
  m.name = cfg.name ?? null;
  m.smp = smp;
  m.clockAtStopNs = null;
  m.as = addressSpaceCreate(ramBytes);
  m.cpus = Array.from({ length: smp }, (_, i) => cpuCreate(i, DEFAULT_RSTVEC));
  m.sys.vcpus = m.cpus.map(vcpuCreate);
  const kick = (cpu: CpuState): void => qemuCpuKick(m, vcpuOf(m, cpu));

  const { dev: clint, regions: clintRegions } = clintCreate(m, m.cpus, kick);
  m.clint = clint;
  const { dev: plic, region: plicRegion } = plicCreate(m.cpus, kick);
  m.plic = plic;
  m.sys.env = cpuEnvCreate(m.as, () => clintReadMtime(clint), m.cpus);

  addressSpaceAddRegion(m.as, sifiveTestRegion({
    shutdown: (code) => qemuSystemExitRequest(m, code),
    reset: () => qemuSystemResetRequest(m, 'guest-reset'),
  }));
  for (const r of clintRegions) addressSpaceAddRegion(m.as, r);
  addressSpaceAddRegion(m.as, plicRegion);

  const serialChr = cfg.serialFactory ? cfg.serialFactory(m) : cfg.serial ?? null;
  const serial = serialMmInit(m, 'serial0', serialChr, (level) => plicSetIrq(plic, VIRT_UART0_IRQ, level), VIRT_UART_BAUDBASE);
  if (typeof serial === 'string') throw new Error(serial);
  m.serial = serial;
  addressSpaceAddRegion(m.as, {
    name: 'serial', base: VIRT_UART0_BASE, size: VIRT_UART0_SIZE, minAccessSize: 1, maxAccessSize: 4,
    read: (off) => (off < 8 ? serialIoportRead(serial, off) : 0),
    write: (off, _size, value) => {
      if (off < 8) serialIoportWrite(serial, off, value);
    },
  });
  m.virtio = virtVirtioCreate(m);

  m.kernel = null;
  let entry = RAM_BASE;
  if (cfg.kernel) {
    m.kernel = loadKernel(m.as, cfg.kernel.bytes, cfg.kernel.name);
    entry = m.kernel.entry;
  }
  const fdtAddr = Math.max(RAM_BASE, RAM_BASE + ramBytes - 2 * 1024 * 1024);
  // The MROM is a 0xf000-byte ROM region (the riscv_virt_board.mrom RAM block) holding the vector.
  const mrom = new Uint8Array(VIRT_MROM_SIZE);
  mrom.set(resetVector(entry, fdtAddr));
  addressSpaceAddRom(m.as, 'mrom.reset', VIRT_MROM_BASE, mrom);

  // Reset handlers in registration order, as qemu_register_reset keeps them.
  qemuRegisterReset(m, 'cpu_reset', () => {
    for (const cpu of m.cpus) cpuReset(cpu);
  });
  qemuRegisterReset(m, 'rom_reset', () => {
    // QEMU re-copies ROM blobs (the -kernel image) into RAM at every reset.
    if (cfg.kernel) loadKernel(m.as, cfg.kernel.bytes, cfg.kernel.name);
  });
  qemuRegisterReset(m, 'riscv_aclint_reset', () => clintReset(clint));
  qemuRegisterReset(m, 'sifive_plic_reset', () => plicReset(plic));
  qemuRegisterReset(m, 'serial_reset', () => serialReset(serial));

  // The clock device's change-state handler (kvmclock's role): remember VIRTUAL at stop and
  // check on start that it did not move while the VM was stopped.
  qemuAddVmChangeStateHandlerPrio(m, 'cpu_clock_vm_state_change', (running) => {
    const now = qemuClockGetNs(m.clocks, QEMU_CLOCK_VIRTUAL);
    if (!running) {
      m.clockAtStopNs = now;
    } else if (m.clockAtStopNs !== null) {
      assert(now === m.clockAtStopNs, `VIRTUAL moved from ${m.clockAtStopNs} to ${now} ns while the VM was stopped`);
      m.clockAtStopNs = null;
    }
    traceEvent(m, TRACE_CONTROL, 'vm_clock', { running, ns: now });
  });

  m.migration = virtMigrationInit({
    clocks: m.clocks, ram: m.as, mrom: m.as.roms.find((r) => r.base === VIRT_MROM_BASE)!.data,
    cpus: m.cpus, clint, plic, serial,
  });
  migrationMachineInit(m);
  m.migration.postLoad = () => virtMachinePostLoad(m);
  m.migration.ramReset = () => {
    // RAM as the reset left it: zeros, then the ROM images rom_reset copies.
    ramDiscardAll(m.as);
    if (cfg.kernel) loadKernel(m.as, cfg.kernel.bytes, cfg.kernel.name);
  };

  rrInstallHooks(m);
  m.loop.hooks.shouldExit = () => {
    if (!mainLoopShouldExit(m)) return false;
    m.loop.exitStatus = m.sys.exitStatus;
    return true;
  };
  for (const cpu of m.cpus) cpuReset(cpu);
  return m;
}

/**
 * After a migration stream was applied: re-derive what no section carries. The PLIC's line
 * level of the UART follows the UART's registers; a stopped VM's remembered VIRTUAL time is the
 * loaded one; no vCPU has a kick or a wake-up pending (they belong to the host's scheduling of
 * the vCPU thread, not to the VM's state).
 */
function virtMachinePostLoad(m: VirtMachine): void {
  if (m.serial) plicPostLoadLine(m.plic, VIRT_UART0_IRQ, serialIrqLevel(m.serial.s));
  if (m.clockAtStopNs !== null) m.clockAtStopNs = qemuClockGetNs(m.clocks, QEMU_CLOCK_VIRTUAL);
  for (const cpu of m.cpus) cpu.exitRequest = false;
  // Re-arming the comparators notified the vCPU thread (the do_nothing item qemu_timer_notify_cb
  // queues). The VM is stopped and starts with a kick anyway; the source had no such item, so it
  // would only shift the destination's schedule against the source's.
  for (const v of m.sys.vcpus) v.work = v.work.filter((w) => w.name !== 'do_nothing');
}

/** End of machine init: start the VM unless -S. @qemu qemu_machine_creation_done / vm_start */
export function virtMachineDone(m: VirtMachine): void {
  if (m.sys.autostart) vmStart(m);
}
