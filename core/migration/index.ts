// Public API of core/migration: QEMUFile, VMState descriptions and their interpreter, the
// savevm registry and save sequence, the atomic incremental loader, the RAM handler, the
// configuration and globalstate sections, and the stream analyzer. Machine-specific
// descriptions over other layers' state are in machine/.

export * from './errors.ts';
export * from './qemu-file.ts';
export * from './qemu-file-reader.ts';
export * from './json-writer.ts';
export * from './vmstate-types.ts';
export {
  vmstateSaveState, vmstateLoadState, vmstateCommit, vmstateSectionNeeded, QEMU_VM_SUBSECTION,
} from './vmstate.ts';
export * from './configuration.ts';
export * from './global-state.ts';
export * from './savevm.ts';
export * from './loadvm.ts';
export type { PostcopyState } from './loadvm-command.ts';
export * from './ram-block.ts';
export {
  ramMigInit, ramBytesTotal, ramBytesRemaining, ramSavePending, migrationBitmapSync,
} from './ram.ts';
export type { RamState, RamCounters } from './ram.ts';
export type { RamLoadStaged } from './ram-load.ts';
export { analyzeMigrationStream, locateVmdesc } from './analyze.ts';
export type { AnalyzeResult, AnalyzeRamBlock } from './analyze.ts';
export { vmstateTimers, cpuTimersRegister, cpuTimersCommit } from './machine/cpu-timers.ts';
export { vmstateCpuCommon, vmstateRiscvCpu, riscvCpuRegister } from './machine/riscv-cpu.ts';
export { vmstateRiscvMtimer, riscvMtimerRegister } from './machine/riscv-aclint.ts';
export { vmstateSifivePlic, sifivePlicRegister } from './machine/sifive-plic.ts';
export { vmstateSerial, vmstateSerialMm, serialVmstateRegister } from './machine/serial.ts';
export {
  virtMigrationInit, VIRT_RAM_IDSTR, VIRT_MROM_IDSTR, type VirtVmstateParts,
} from './machine/virt.ts';
export * from './migration-params.ts';
export * from './migration-state.ts';
export {
  migrationUriParse, migrationPipeCreate, migrationFdLookup, type MigrationUri,
} from './migration-channel.ts';
export { qmpMigrate, qmpMigrateCancel, type MigrateOptions } from './migration.ts';
export {
  BUFFER_DELAY_MS, MIGRATION_STEP_BYTES, MIGRATION_CHANNEL_HIGH_BYTES,
} from './migration-thread.ts';
export { qmpMigrateIncoming, migrationIncomingStartup } from './migration-incoming.ts';
export { migrationSaveVm, migrationSaveVmBytes, migrationLoadVm } from './migration-snapshot.ts';
export { migrationStateHash, type MigrationStateHash } from './migration-hash.ts';
