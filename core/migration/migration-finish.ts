// The end of an outgoing migration (migration/migration.c, QEMU 7.2): what the source does when
// the migration thread's loop is over (postmigrate after success; the guest resumes after a
// failure or cancel if the migration had stopped it), and the cleanup bottom half that closes
// the stream, turns cancelling into cancelled and reports the error.
// Invariant: cleanup runs once per migration, after its last step.

import { aioBhScheduleOneshot, timerDel } from '../loop/index.ts';
import { runstateCheck, runstateSet, vmStart } from '../system/index.ts';
import { qemuFclose } from './qemu-file.ts';
import { qemuSavevmStateCleanup } from './savevm.ts';
import {
  type MigrationMachine, type OutgoingMigration, migrateSetState, realtimeMs,
} from './migration-state.ts';
import { migrationChannelClose } from './migration-channel.ts';

/**
 * The loop is over: the source resumes after a failure, or enters postmigrate after success;
 * cleanup follows in a bottom half. @qemu migration_iteration_finish
 */
export function migrationIterationFinish(m: MigrationMachine, s: OutgoingMigration): void {
  timerDel(s.rateTimer);
  s.phase = 'done';
  switch (s.status) {
    case 'completed':
      migrationCalculateComplete(m, s);
      runstateSet(m, 'postmigrate');
      break;
    case 'failed': case 'cancelled': case 'cancelling':
      if (s.vmWasRunning) {
        if (!runstateCheck(m, 'shutdown')) vmStart(m);
      } else if (runstateCheck(m, 'finish-migrate')) {
        runstateSet(m, 'postmigrate');
      }
      break;
    default:
      m.sys.report(`migration_iteration_finish: Unknown ending state ${s.status}`);
  }
  aioBhScheduleOneshot(m.loop.aio, 'migrate_fd_cleanup_bh', () => migrateFdCleanup(m, s));
}

/** @qemu migration_calculate_complete */
function migrationCalculateComplete(m: MigrationMachine, s: OutgoingMigration): void {
  const end = realtimeMs(m);
  const bytes = s.f?.transferred ?? 0;
  s.totalTimeMs = end - s.startTimeMs;
  s.downtimeMs = end - s.downtimeStartMs;
  const transferTime = s.totalTimeMs - s.setupTimeMs;
  if (transferTime) s.mbps = (bytes * 8) / transferTime / 1000;
}

/**
 * Close the stream, finish a cancel, report the error. @qemu migrate_fd_cleanup
 */
export function migrateFdCleanup(m: MigrationMachine, s: OutgoingMigration): void {
  timerDel(s.rateTimer);
  s.phase = 'done';
  if (s.f !== null) {
    qemuSavevmStateCleanup(m.migration.sv);
    qemuFclose(s.f);
    s.f = null;
  }
  if (s.channel !== null) {
    migrationChannelClose(m, s.channel);
  }
  if (s.status === 'cancelling') migrateSetState(m, s, 'cancelling', 'cancelled');
  if (s.error !== null) m.sys.report(s.error);
}

