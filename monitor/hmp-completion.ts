// HMP TAB completion (monitor/hmp.c monitor_find_completion): command names (each alias on its
// own), `info` sub-commands, `help` arguments, file names for 'F' arguments through the
// machine's directory lister (no file-system access here) and custom completers such as
// loadvm's snapshot tags. Only commands available in the current phase are offered.

import type { MonitorSet } from './monitor.ts';
import { type ReadLineState, readlineAddCompletion, readlineSetCompletionIndex } from './readline.ts';
import { type HmpCommand, cmdAvailable, hmpCompareCmd } from './hmp-commands.ts';
import { MAX_ARGS, parseCmdline } from './hmp-args.ts';
import { isSpaceCode } from './hmp-expr.ts';

/** Add the aliases of `list` that start with `name`. @qemu monitor/hmp.c cmd_completion */
function cmdCompletion(rs: ReadLineState, name: string, list: string): void {
  for (const alias of list.split('|')) {
    const cmd = alias.slice(0, 126);
    if (name === '' || cmd.startsWith(name)) readlineAddCompletion(rs, cmd);
  }
}

/** Complete a file name through the machine's lister. @qemu monitor/hmp.c file_completion */
function fileCompletion(mons: MonitorSet, rs: ReadLineState, input: string): void {
  const slash = input.lastIndexOf('/');
  const dir = slash < 0 ? '.' : input.slice(0, slash + 1);
  const prefix = slash < 0 ? input : input.slice(slash + 1);
  const entries = mons.machine.listDirectory(dir);
  if (entries === null) return;
  for (const e of entries) {
    if (e.name === '.' || e.name === '..') continue;
    if (!e.name.startsWith(prefix)) continue;
    const file = (slash < 0 ? '' : input.slice(0, slash + 1)) + e.name;
    readlineAddCompletion(rs, e.isDir ? file + '/' : file);
  }
}

function nextArgType(typestr: string): string {
  const p = typestr.indexOf(':');
  return p < 0 ? typestr : typestr.slice(p + 1);
}

/** @qemu monitor/hmp.c monitor_find_completion_by_table */
function completeByTable(mons: MonitorSet, rs: ReadLineState, table: readonly HmpCommand[], args: string[], depth: number): void {
  if (depth > 4) return;
  if (args.length <= 1) {
    const cmdname = args[0] ?? '';
    readlineSetCompletionIndex(rs, cmdname.length);
    for (const c of table) if (cmdAvailable(mons, c)) cmdCompletion(rs, cmdname, c.name);
    return;
  }
  const cmd = table.find((c) => hmpCompareCmd(args[0]!, c.name) && cmdAvailable(mons, c));
  if (!cmd) return;
  if (cmd.subTable) {
    completeByTable(mons, rs, cmd.subTable, args.slice(1), depth + 1);
    return;
  }
  const last = args[args.length - 1]!;
  if (cmd.commandCompletion) {
    cmd.commandCompletion(mons, rs, args.length, last);
    return;
  }
  let ptype = nextArgType(cmd.argsType);
  for (let i = 0; i < args.length - 2; i++) {
    if (ptype !== '') {
      ptype = nextArgType(ptype);
      for (let g = 0; ptype[0] === '?' && g < 64; g++) ptype = nextArgType(ptype);
    }
  }
  let old: string | null = null;
  while (ptype[0] === '-' && old !== ptype) {
    old = ptype;
    ptype = nextArgType(ptype);
  }
  switch (ptype[0]) {
    case 'F':
      readlineSetCompletionIndex(rs, last.length);
      fileCompletion(mons, rs, last);
      break;
    case 's':
    case 'S':
      if (cmd.name === 'help|?') completeByTable(mons, rs, table, args.slice(1), depth + 1);
      break;
    default:
      // 'B' (block backends) completes nothing until the block layer registers a completer.
      break;
  }
}

/**
 * The completion finder readline calls with the text left of the cursor.
 * @qemu monitor/hmp.c monitor_find_completion
 */
export function monitorFindCompletion(mons: MonitorSet, rs: ReadLineState, cmdline: string): void {
  const args = parseCmdline(mons, cmdline);
  if (args === null) return;
  if (cmdline.length > 0 && isSpaceCode(cmdline.charCodeAt(cmdline.length - 1))) {
    if (args.length >= MAX_ARGS) return;
    args.push('');
  }
  completeByTable(mons, rs, mons.hmpCmds, args, 0);
}

/** A command_completion for commands taking a snapshot tag (loadvm, delvm). */
export function snapshotTagCompletion(mons: MonitorSet, rs: ReadLineState, nbArgs: number, str: string): void {
  if (nbArgs !== 2) return;
  readlineSetCompletionIndex(rs, str.length);
  for (const tag of mons.machine.snapshotTags()) {
    if (tag.startsWith(str)) readlineAddCompletion(rs, tag);
  }
}
