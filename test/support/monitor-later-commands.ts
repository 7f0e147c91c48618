// Stand-ins for commands that later issues (snapshots, migration) add to the monitor tables,
// with QEMU 7.2's args_type, params and help, and the behaviour of a machine without a
// snapshot-capable disk. They exist so transcripts that use these names can be replayed now; the
// real handlers come with their issues and register the same way (hmpRegisterCommands).

import {
  type MonitorSet, errorReport, hmpRegisterCommands, monitorPrintf, qmpFail, qmpRegisterCommands, T_STR,
  snapshotTagCompletion,
} from '../../monitor/index.ts';

const NO_VMSTATE = 'no block device can store vmstate for snapshot';

export function registerLaterCommandStandIns(mons: MonitorSet): void {
  hmpRegisterCommands(mons, 'main', [
    { name: 'savevm', argsType: 'name:s?', params: 'tag',
      help: 'save a VM snapshot. If no tag is provided, a new snapshot is created',
      cmd: (ms) => errorReport(ms, `Error: ${NO_VMSTATE}`) },
    { name: 'loadvm', argsType: 'name:s', params: 'tag', help: 'restore a VM snapshot from its tag',
      commandCompletion: snapshotTagCompletion, cmd: (ms) => errorReport(ms, `Error: ${NO_VMSTATE}`) },
    { name: 'delvm', argsType: 'name:s', params: 'tag', help: 'delete a VM snapshot from its tag',
      commandCompletion: snapshotTagCompletion, cmd: () => {} },
    { name: 'migrate', argsType: 'detach:-d,blk:-b,inc:-i,resume:-r,uri:s', params: '[-d] [-b] [-i] [-r] uri',
      help: 'migrate to URI (using -d to not wait for completion)\n\t\t\t -b for migration without shared storage with'
        + ' full copy of disk\n\t\t\t -i for migration without shared storage with incremental copy of disk (base'
        + ' image shared between src and destination)\n\t\t\t -r to resume a paused migration',
      cmd: (ms) => errorReport(ms, 'Error: migration is not implemented by this stand-in') },
  ]);
  hmpRegisterCommands(mons, 'info', [
    { name: 'snapshots', argsType: '', params: '', help: 'show the currently saved VM snapshots',
      cmd: (ms, mon) => void monitorPrintf(ms, mon, `${NO_VMSTATE}\n`) },
  ]);
  qmpRegisterCommands(mons, [
    { name: 'migrate-recover', args: [{ name: 'uri', type: T_STR }], allowOob: true,
      fn: () => qmpFail('Migrate recover can only be run when postcopy is paused.') },
  ]);
}
