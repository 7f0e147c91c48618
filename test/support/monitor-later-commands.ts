// The snapshot and migration commands on the fake machine of the monitor tests: the real
// command tables (monitor/snapshot-cmds.ts, monitor/migration-cmds.ts) over fake operations that
// behave as a machine without a snapshot-capable disk and without migration (nothing migrates:
// it refuses to start and reports no migration), so transcripts using these names replay.

import {
  type MonitorMigration, type MonitorSet, type MonitorSnapshotOps, migrationRegisterCommands, registerSnapshotCommands,
} from '../../monitor/index.ts';
import type { SnapshotResult } from '../../core/snapshot/index.ts';
import {
  HMP_PARAMETER_ORDER, MIGRATION_CAPABILITIES, MIGRATION_PARAMETERS, migrationConfigCreate,
  migrationParamLine, migrationParamsQuery,
} from '../../core/migration/index.ts';

/** A fake machine's migration: settings can be read, nothing can be started. */
export function fakeMigration(): MonitorMigration {
  const config = migrationConfigCreate();
  const refuse = 'the fake test machine cannot migrate';
  return {
    migrate: () => refuse,
    migrateIncoming: () => "'-incoming' was not specified on the command line",
    migrateCancel: () => {},
    queryMigrate: () => ({}),
    capabilities: () => MIGRATION_CAPABILITIES.map((c): [string, boolean] => [c, config.caps[c]]),
    setCapabilities: () => refuse,
    parameters: () => migrationParamsQuery(config),
    setParameters: () => refuse,
    parameterLine: migrationParamLine,
    hmpParameterOrder: HMP_PARAMETER_ORDER,
    parameterNames: MIGRATION_PARAMETERS.map((p) => p.name),
  };
}

const NO_VMSTATE = 'no block device can store vmstate for snapshot';

/**
 * The real snapshot commands over a fake machine without a disk that can hold a VM state: every
 * savevm, loadvm and `info snapshots` fails as QEMU 7.2's does on such a machine (loadvm stops
 * the VM first, as hmp_loadvm does), delvm succeeds silently; there are no jobs.
 */
export function disklessSnapshotOps(mons: MonitorSet): MonitorSnapshotOps {
  const fail = (): SnapshotResult => ({ ok: false, error: NO_VMSTATE, reports: [] });
  const noJobs = (): string => 'the fake test machine runs no snapshot jobs';
  return {
    savevm: fail,
    loadvm: () => {
      mons.machine.vmStop('restore-vm');
      return fail();
    },
    delvm: () => ({ ok: true, reports: [] }),
    infoSnapshots: () => ({ ok: false, error: NO_VMSTATE }),
    snapshotSave: noJobs,
    snapshotLoad: noJobs,
    snapshotDelete: noJobs,
    queryJobs: () => [],
    jobDismiss: () => 'Job not found',
    infoBlock: () => '', // no drives: QEMU prints nothing
    queryBlock: () => [],
    queryNamedBlockNodes: () => [],
  };
}

/** The snapshot commands (diskless) and the migration commands, on a fake machine's monitors. */
export function registerLaterCommandStandIns(mons: MonitorSet): void {
  registerSnapshotCommands(mons, disklessSnapshotOps(mons));
  migrationRegisterCommands(mons, fakeMigration());
}
