// Creating the monitor set of one machine (monitor/monitor.c monitor_init_globals and
// monitor_init_qmp_commands): the HMP tables with this commands, the QMP tables, the
// dispatcher state, and the subscription to the kernel's QAPI events. Other layers add their
// commands with hmpRegisterCommands / qmpRegisterCommands afterwards.

import type { LoopMachine } from '../core/loop/index.ts';
import { notifierListAdd } from '../core/util/index.ts';
import type { MonitorMachine } from './machine.ts';
import type { MonitorSet } from './monitor.ts';
import { hmpRegisterCommands } from './hmp-commands.ts';
import { HMP_BASE_COMMANDS, HMP_BASE_INFO_COMMANDS } from './hmp-cmds.ts';
import { qmpRegisterCommands } from './qmp-dispatch.ts';
import { QMP_CAP_NEGOTIATION_COMMANDS, QMP_CONTROL_COMMANDS } from './qmp-cmds-control.ts';
import { QMP_MACHINE_COMMANDS } from './qmp-cmds.ts';
import { qapiEventEmit } from './events.ts';

/**
 * Create the monitors' shared state for `m`, with the base HMP and QMP commands registered and
 * QAPI events from `m.qapiEvents` forwarded to QMP clients. Create monitors on chardevs with
 * monitorInitHmp / monitorInitQmp.
 */
export function monitorsCreate(m: LoopMachine, machine: MonitorMachine): MonitorSet {
  const mons: MonitorSet = {
    m, machine, list: [], nextId: 0, cur: null, hmpCmds: [], hmpInfoCmds: [], qmpCommands: [],
    qmpCapNegotiationCommands: [...QMP_CAP_NEGOTIATION_COMMANDS],
    dispatcher: { busy: false, handled: 0 },
    events: { queue: [], reentered: false, rate: new Map() },
    fmt: { format: 0x78, size: 4 },
    monRefcount: 0,
  };
  hmpRegisterCommands(mons, 'info', HMP_BASE_INFO_COMMANDS);
  hmpRegisterCommands(mons, 'main', HMP_BASE_COMMANDS.map((c) =>
    c.name === 'info' ? { ...c, subTable: mons.hmpInfoCmds } : c));
  qmpRegisterCommands(mons, QMP_CONTROL_COMMANDS);
  qmpRegisterCommands(mons, QMP_MACHINE_COMMANDS);
  notifierListAdd(m.qapiEvents, (ev) => qapiEventEmit(mons, ev));
  return mons;
}
