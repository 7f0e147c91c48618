// QMP control commands (monitor/qmp-cmds-control.c, qapi/control.json): qmp_capabilities with
// its negotiation rules and errors, query-version and query-commands. query-commands lists the
// enabled commands in reverse registration order, as QEMU builds the list by prepending.

import { type MonitorSet, type Monitor } from './monitor.ts';
import { type QDict, type QObject, qdictFrom, qnumInt, utf8ToBytes } from './qobject.ts';
import { type QmpCommand, type QmpResult, QMP_OK, qmpFail } from './qmp-dispatch.ts';
import { argList } from './qapi-visit.ts';

/** The QMPCapability enum (qapi/control.json). */
export const QMP_CAPABILITIES = ['oob'] as const;

/** VersionInfo: {qemu: {major, minor, micro}, package}. @qemu qmp_query_version */
export function qmpQueryVersionValue(mons: MonitorSet): QDict {
  const v = mons.machine.version;
  const triple = qdictFrom([['major', qnumInt(v.major)], ['minor', qnumInt(v.minor)], ['micro', qnumInt(v.micro)]]);
  return qdictFrom([['qemu', triple], ['package', utf8ToBytes(mons.machine.package)]]);
}

/** @qemu monitor/qmp-cmds-control.c qmp_qmp_capabilities */
export function qmpQmpCapabilities(mons: MonitorSet, mon: Monitor, enable: QObject[] | undefined): QmpResult {
  if (mon.kind !== 'qmp') return qmpFail('qmp_capabilities needs a QMP monitor');
  if (mon.commands === 'full') {
    return qmpFail('Capabilities negotiation is already complete, command ignored', 'CommandNotFound');
  }
  const unavailable: string[] = [];
  const capab = { oob: false };
  for (const c of enable ?? []) {
    if (c === 'oob') {
      if (!mon.capabOffered.oob) unavailable.push('oob');
      capab.oob = true;
    }
  }
  if (unavailable.length > 0) return qmpFail(`Capability ${unavailable.join(', ')} not available`);
  mon.capab = capab;
  mon.commands = 'full';
  return QMP_OK;
}

const QMP_CAPABILITIES_CMD: QmpCommand = {
  name: 'qmp_capabilities',
  args: [{ name: 'enable', optional: true, type: { kind: 'list', of: { kind: 'enum', values: QMP_CAPABILITIES } } }],
  allowPreconfig: true,
  fn: (mons, mon, a) => qmpQmpCapabilities(mons, mon, argList(a, 'enable')),
};

/** @qemu monitor/qmp-cmds-control.c qmp_query_commands */
function qmpQueryCommands(mons: MonitorSet): QmpResult {
  const list: QObject[] = [];
  for (const c of mons.qmpCommands) {
    if (c.enabled === false) continue;
    list.unshift(qdictFrom([['name', c.name]]));
  }
  return { ok: true, value: list };
}

/** The control commands of the full table. */
export const QMP_CONTROL_COMMANDS: readonly QmpCommand[] = [
  QMP_CAPABILITIES_CMD,
  { name: 'query-version', args: [], allowPreconfig: true, fn: (mons) => ({ ok: true, value: qmpQueryVersionValue(mons) }) },
  { name: 'query-commands', args: [], allowPreconfig: true, fn: (mons) => qmpQueryCommands(mons) },
];

/** The negotiation table: only qmp_capabilities. @qemu monitor_init_qmp_commands */
export const QMP_CAP_NEGOTIATION_COMMANDS: readonly QmpCommand[] = [QMP_CAPABILITIES_CMD];
