// The sections of the riscv32 virt board, registered in QEMU 7.2's order (compare the real
// stream in shared/streams): "timer", "ram" (blocks riscv_virt_board.ram and
// riscv_virt_board.mrom, largest first), then per hart "cpu_common" and "cpu", "riscv_mtimer",
// "riscv_sifive_plic", "serial" and last "globalstate". QEMU's virt also has flash, PCI, RTC,
// fw_cfg and slirp sections; detvm's board has none of those devices.
// Invariant: registration happens once per machine, before the first save or load.

import type { ClocksState } from '../../loop/index.ts';
import type { Ram } from '../../memory/index.ts';
import type { CpuState } from '../../cpu/index.ts';
import type { ClintDevice, PlicDevice, SerialDevice } from '../../hw/index.ts';
import { type GlobalState, globalStateCreate, registerGlobalState } from '../global-state.ts';
import { type MigrationState, migrationStateCreate } from '../migration-state.ts';
import { ramBlockFromBytes, ramBlockFromRam } from '../ram-block.ts';
import { ramMigInit } from '../ram.ts';
import { savevmStateCreate } from '../savevm.ts';
import { cpuTimersRegister } from './cpu-timers.ts';
import { riscvCpuRegister } from './riscv-cpu.ts';
import { riscvMtimerRegister } from './riscv-aclint.ts';
import { sifivePlicRegister } from './sifive-plic.ts';
import { serialVmstateRegister } from './serial.ts';

/** QEMU's RAMBlock names on the virt board. */
export const VIRT_RAM_IDSTR = 'riscv_virt_board.ram';
export const VIRT_MROM_IDSTR = 'riscv_virt_board.mrom';

/** What the virt board's sections describe. */
export interface VirtVmstateParts {
  clocks: ClocksState;
  ram: Ram;
  /** The MROM's bytes (0xf000 of them, as QEMU's memory region). */
  mrom: Uint8Array;
  cpus: CpuState[];
  clint: ClintDevice;
  plic: PlicDevice;
  serial: SerialDevice | null;
}

/**
 * Create the machine's savevm registry with every section, in QEMU's order.
 * @qemu softmmu/vl.c (cpu_timers_init, migration_object_init) and the devices' realize
 */
export function virtMigrationInit(parts: VirtVmstateParts): MigrationState {
  const sv = savevmStateCreate('virt');
  const gs: GlobalState = globalStateCreate();
  cpuTimersRegister(sv, parts.clocks);
  const { rs } = ramMigInit(sv, [
    ramBlockFromRam(parts.ram, VIRT_RAM_IDSTR), ramBlockFromBytes(VIRT_MROM_IDSTR, parts.mrom),
  ]);
  for (const cpu of parts.cpus) riscvCpuRegister(sv, cpu);
  riscvMtimerRegister(sv, parts.clint);
  sifivePlicRegister(sv, parts.plic);
  if (parts.serial !== null) serialVmstateRegister(sv, parts.serial);
  registerGlobalState(sv, gs);
  return migrationStateCreate(sv, rs, gs);
}
