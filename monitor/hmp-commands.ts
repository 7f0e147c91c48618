// The HMP command tables (hmp-commands.hx, hmp-commands-info.hx as data): declarative entries
// with QEMU's fields, registration by any layer's issue (migration, snapshots, replay...), kept
// sorted by strcmp of the full name as QEMU's sortcmdlist does, and `help` (help_cmd).
// Invariant: names are unique per table; both tables stay sorted after every registration.

import { assert } from '../core/util/index.ts';
import type { Monitor, MonitorSet } from './monitor.ts';
import { monitorPrintf } from './monitor.ts';
import type { ReadLineState } from './readline.ts';

/** A parsed HMP argument (qdict value): strings, int64s, booleans, doubles. */
export type HmpArgValue = string | bigint | boolean | number;
export type HmpArgs = Map<string, HmpArgValue>;

/** A command handler. `mon` is the monitor the command runs on (monitor_cur()). */
export type HmpHandler = (mons: MonitorSet, mon: Monitor, args: HmpArgs) => void;

/** Custom completion (command_completion): add candidates for the last argument `str`. */
export type HmpCompletion = (mons: MonitorSet, rs: ReadLineState, nbArgs: number, str: string) => void;

/** @qemu monitor/monitor-internal.h HMPCommand */
export interface HmpCommand {
  /** '|'-separated aliases, e.g. 'cont|c'. */
  name: string;
  /** Comma-separated key:type items (spec §3.4). */
  argsType: string;
  /** Usage shown by help. */
  params: string;
  help: string;
  cmd?: HmpHandler;
  /** Only `info`: the table of sub-commands. */
  subTable?: HmpCommand[];
  commandCompletion?: HmpCompletion;
  /** 'p': allowed before machine initialization completed (-preconfig). */
  flags?: string;
  /** QEMU runs these in a coroutine; detvm runs them like the others (no nested loop). */
  coroutine?: boolean;
}

function strcmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Add commands to the main table ('main') or the info table ('info'), keeping QEMU's sort.
 * Throws on a duplicate name (a programming error in the registering layer).
 */
export function hmpRegisterCommands(mons: MonitorSet, table: 'main' | 'info', cmds: readonly HmpCommand[]): void {
  const list = table === 'main' ? mons.hmpCmds : mons.hmpInfoCmds;
  for (const c of cmds) {
    assert(!list.some((x) => x.name === c.name), `HMP command '${c.name}' registered twice`);
    list.push(c);
  }
  list.sort((a, b) => strcmp(a.name, b.name));
}

/** Whether `name` is one of the '|'-separated aliases in `list`. @qemu hmp_compare_cmd */
export function hmpCompareCmd(name: string, list: string): boolean {
  return list.split('|').includes(name);
}

/** @qemu monitor/hmp.c cmd_available */
export function cmdAvailable(mons: MonitorSet, cmd: HmpCommand): boolean {
  return mons.machine.machineReady() || (cmd.flags ?? '').includes('p');
}

/** @qemu monitor/hmp.c search_dispatch_table */
export function searchDispatchTable(table: readonly HmpCommand[], name: string): HmpCommand | null {
  for (const c of table) if (hmpCompareCmd(name, c.name)) return c;
  return null;
}

function helpCmdDumpOne(mons: MonitorSet, mon: Monitor, cmd: HmpCommand, prefix: string[]): void {
  if (!cmdAvailable(mons, cmd)) return;
  const pre = prefix.map((a) => a + ' ').join('');
  monitorPrintf(mons, mon, `${pre}${cmd.name} ${cmd.params} -- ${cmd.help}\n`);
}

/** @qemu monitor/hmp.c help_cmd_dump */
function helpCmdDump(mons: MonitorSet, mon: Monitor, cmds: readonly HmpCommand[], args: string[], argIndex: number): void {
  if (argIndex >= args.length) {
    for (const c of cmds) helpCmdDumpOne(mons, mon, c, args.slice(0, argIndex));
    return;
  }
  for (const c of cmds) {
    if (hmpCompareCmd(args[argIndex]!, c.name) && cmdAvailable(mons, c)) {
      if (c.subTable) helpCmdDump(mons, mon, c.subTable, args, argIndex + 1);
      else helpCmdDumpOne(mons, mon, c, args.slice(0, argIndex));
      return;
    }
  }
  monitorPrintf(mons, mon, `unknown command: '${args.slice(0, argIndex + 1).join(' ')}'\n`);
}

/**
 * `help [name]`: all commands, or the ones the words of `name` select ("help info status").
 * @qemu monitor/hmp.c help_cmd
 */
export function helpCmd(mons: MonitorSet, mon: Monitor, name: string | null, parseCmdline: (s: string) => string[] | null): void {
  let args: string[] = [];
  if (name !== null) {
    if (name === 'log') {
      // detvm has no -d log items; QEMU prints its item table here.
      monitorPrintf(mons, mon, 'Log items (comma separated):\n');
      monitorPrintf(mons, mon, `${'none'.padEnd(10)} remove all logs\n`);
      return;
    }
    const parsed = parseCmdline(name);
    if (parsed === null) return;
    args = parsed;
  }
  helpCmdDump(mons, mon, mons.hmpCmds, args, 0);
}
