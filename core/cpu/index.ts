// Public API of core/cpu: the RV32IMA M-mode hart as plain data (CpuState), its step function
// (cpuExec), interrupt lines, reset, save/load, and the `info registers` text.

export {
  cpuCreate, cpuEnvCreate, cpuReset, cpuSetIrqLevel, cpuHasWork, cpuExit, cpuGetPc,
  cpuSaveState, cpuLoadState,
} from './cpu.ts';
export type { CpuState, CpuSavedState, CpuEnv } from './cpu.ts';
export { cpuExec } from './exec.ts';
export type { CpuExit } from './exec.ts';
export { cpuDumpState } from './dump.ts';
export {
  IRQ_M_SOFT, IRQ_M_TIMER, IRQ_M_EXT, MIP_MSIP, MIP_MTIP, MIP_MEIP, MISA_RV32IMA, DEFAULT_RSTVEC,
  MCAUSE_INTERRUPT,
} from './cpu-bits.ts';
