// MonitorMigration over the kernel's migration state (core/migration): the migration commands
// reach the machine only through this, as the run-state commands go through virt-bindings.ts.

import {
  HMP_PARAMETER_ORDER, MIGRATION_CAPABILITIES, MIGRATION_PARAMETERS, MIGRATION_PARAMETERS_SUPPORTED,
  type MigrationCapability, type MigrationMachine, type MigrationParamSupported, migrationCapsSet,
  migrationIsRunning, migrationParamLine, migrationParamsQuery, migrationParamsSet, qemuSavevmStateBlocked,
  qmpMigrate, qmpMigrateCancel, qmpMigrateIncoming, qmpQueryMigrate, migrationStateHash,
} from '../core/migration/index.ts';
import type { MonitorMigration } from './migration-cmds.ts';

/** The migration commands' view of `m`. */
export function migrationMonitorBindings(m: MigrationMachine): MonitorMigration {
  const ms = m.migration;
  return {
    migrate: (uri, o) => qmpMigrate(m, uri, o),
    migrateIncoming: (uri) => qmpMigrateIncoming(m, uri),
    migrateCancel: () => qmpMigrateCancel(m),
    queryMigrate: () => qmpQueryMigrate(m, qemuSavevmStateBlocked(ms.sv)),
    capabilities: () => MIGRATION_CAPABILITIES.map((c): [string, boolean] => [c, ms.config.caps[c]]),
    setCapabilities: (changes) => migrationCapsSet(ms.config, changes as Array<[MigrationCapability, boolean]>,
      ms.out !== null && migrationIsRunning(ms.out.status)),
    parameters: () => migrationParamsQuery(ms.config),
    setParameters: (values) => {
      const supported: Partial<Record<MigrationParamSupported, bigint>> = {};
      for (const [name, v] of values) {
        if (!(MIGRATION_PARAMETERS_SUPPORTED as readonly string[]).includes(name)) {
          return `detvm does not support the migration parameter '${name}'`;
        }
        supported[name as MigrationParamSupported] = v;
      }
      return migrationParamsSet(ms.config, supported);
    },
    parameterLine: migrationParamLine,
    hmpParameterOrder: HMP_PARAMETER_ORDER,
    stateHash: () => migrationStateHash(m),
    parameterNames: MIGRATION_PARAMETERS.map((p) => p.name),
  };
}
