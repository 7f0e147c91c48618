// Whole-VM streams for the library's vm.save() / vm.load() and for savevm / loadvm: a stopped
// machine saved as QEMU's stream (migration/savevm.c qemu_savevm_state with save_snapshot's
// run-state handling), and an atomic load with load_snapshot's semantics: the stream is checked
// completely first; only a valid one resets the devices and is applied.
// Invariant: a failed load changes nothing but the run state (restore-vm, as QEMU 7.2 leaves it).

import { qemuSystemReset, runstateGet, runstateIsRunning, vmStart, vmStop } from '../system/index.ts';
import { EINVAL, type MigrationFailure } from './errors.ts';
import { globalStateStore } from './global-state.ts';
import { loadvmCommit, loadvmCreate, loadvmFeed } from './loadvm.ts';
import { type QEMUFileWriter, qemuFileGetBuffer, qemuFileWriterCreate } from './qemu-file.ts';
import { qemuSavevmState, qemuSavevmStateBlocked } from './savevm.ts';
import { type MigrationMachine, migrationIsRunning } from './migration-state.ts';

/**
 * Write the whole VM to `f` (unlimited rate) the way savevm does: refuse during a migration,
 * store the run state, stop the VM (save-vm) for the save and resume it after. Returns the
 * failure with QEMU's messages, or null.
 * @qemu migration/savevm.c save_snapshot (its vmstate part) and qemu_savevm_state
 */
export function migrationSaveVm(m: MigrationMachine, f: QEMUFileWriter): MigrationFailure | null {
  const ms = m.migration;
  if (ms.out !== null && migrationIsRunning(ms.out.status)) {
    return { ret: -EINVAL, messages: ["There's a migration process in progress"] };
  }
  const blocked = qemuSavevmStateBlocked(ms.sv);
  if (blocked !== null) return { ret: -EINVAL, messages: [blocked] };
  const wasRunning = runstateIsRunning(m);
  globalStateStore(ms.gs, runstateGet(m));
  vmStop(m, 'save-vm');
  const failure = qemuSavevmState(ms.sv, f);
  if (wasRunning) vmStart(m);
  return failure;
}

/** The whole VM as one stream. Throws nothing: returns the bytes or the failure. */
export function migrationSaveVmBytes(m: MigrationMachine): Uint8Array | MigrationFailure {
  const f = qemuFileWriterCreate();
  const failure = migrationSaveVm(m, f);
  return failure ?? qemuFileGetBuffer(f).slice();
}

/**
 * Load a complete stream into the machine: stop it (restore-vm), check the whole stream, then
 * reset the devices (no RESET event) and apply it, and resume if it ran. On failure nothing is
 * applied and the VM stays in restore-vm; the messages end with "Error N while loading VM state".
 * @qemu migration/savevm.c load_snapshot, hmp_loadvm (7.2)
 */
export function migrationLoadVm(m: MigrationMachine, bytes: Uint8Array): MigrationFailure | null {
  const ms = m.migration;
  const wasRunning = runstateIsRunning(m);
  vmStop(m, 'restore-vm');
  const ls = loadvmCreate(ms.sv);
  loadvmFeed(ls, bytes);
  if (loadvmFeed(ls, null) !== 'loaded') {
    const f = ls.failure!;
    return { ret: f.ret, messages: [...f.messages, `Error ${f.ret} while loading VM state`] };
  }
  qemuSystemReset(m, 'snapshot-load');
  loadvmCommit(ls);
  ms.postLoad();
  if (wasRunning) vmStart(m);
  return null;
}
