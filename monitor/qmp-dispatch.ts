// QMP command tables and dispatch (qapi/qmp-dispatch.c, qapi/qmp-registry.c): the checks of
// qmp_dispatch_check_obj in QDict bucket order, command lookup and OOB/preconfig rules, argument
// validation, and the response with `id` copied last (so it prints after "return" and before
// "error"). Dispatch is split in two so the handler can run from a bottom half as QEMU does.

import { assert } from '../core/util/index.ts';
import type { Monitor, MonitorSet } from './monitor.ts';
import {
  type QDict, type QObject, isQDict, qdictEntries, qdictFrom, qdictNew, qdictPut,
} from './qobject.ts';
import { type QapiArgs, type QapiMember, qapiVisitArgs } from './qapi-visit.ts';

/** @qemu qapi/qapi-types-error QapiErrorClass */
export type QmpErrorClass = 'GenericError' | 'CommandNotFound' | 'DeviceNotActive' | 'DeviceNotFound' | 'KVMMissingCap';

export interface QmpError {
  cls: QmpErrorClass;
  desc: string;
}

/** What a handler returns: a value (undefined = no 'returns', printed as {}) or an error. */
export type QmpResult = { ok: true; value?: QObject } | { ok: false; error: QmpError };

export const QMP_OK: QmpResult = { ok: true };

export function qmpFail(desc: string, cls: QmpErrorClass = 'GenericError'): QmpResult {
  return { ok: false, error: { cls, desc } };
}

export type QmpHandler = (mons: MonitorSet, mon: Monitor, args: QapiArgs) => QmpResult;

/** @qemu include/qapi/qmp/dispatch.h QmpCommand */
export interface QmpCommand {
  name: string;
  args: readonly QapiMember[];
  fn: QmpHandler;
  allowOob?: boolean;
  allowPreconfig?: boolean;
  /** QEMU runs the handler in the dispatcher coroutine instead of a bottom half. */
  coroutine?: boolean;
  enabled?: boolean;
}

/** Register commands (qmp_register_command). Throws on a duplicate name. */
export function qmpRegisterCommands(mons: MonitorSet, cmds: readonly QmpCommand[]): void {
  for (const c of cmds) {
    assert(!mons.qmpCommands.some((x) => x.name === c.name), `QMP command '${c.name}' registered twice`);
    mons.qmpCommands.push(c);
  }
}

/** @qemu qapi/qmp-dispatch.c qmp_error_response */
export function qmpErrorResponse(err: QmpError): QDict {
  return qdictFrom([['error', qdictFrom([['class', err.cls], ['desc', err.desc]])]]);
}

/** @qemu qapi/qmp-dispatch.c qmp_dispatch_check_obj */
function qmpDispatchCheckObj(dict: QDict, allowOob: boolean): string | null {
  let execKey: string | null = null;
  for (const [name, obj] of qdictEntries(dict)) {
    if (name === 'execute' || (name === 'exec-oob' && allowOob)) {
      if (typeof obj !== 'string') return `QMP input member '${name}' must be a string`;
      if (execKey !== null) return `QMP input member '${name}' clashes with '${execKey}'`;
      execKey = name;
    } else if (name === 'arguments') {
      if (!isQDict(obj)) return "QMP input member 'arguments' must be an object";
    } else if (name !== 'id') {
      return `QMP input member '${name}' is unexpected`;
    }
  }
  return execKey === null ? "QMP input lacks member 'execute'" : null;
}

/** Either a finished response, or a command to run with its validated arguments. */
export type DispatchPlan =
  | { kind: 'done'; rsp: QDict }
  | { kind: 'run'; cmd: QmpCommand; args: QDict; id: QObject | undefined; oob: boolean };

/** Add `id` (if any) as the last member. */
function withId(rsp: QDict, id: QObject | undefined): QDict {
  if (id !== undefined) qdictPut(rsp, 'id', id);
  return rsp;
}

/**
 * First half of qmp_dispatch: everything up to calling the handler.
 * @qemu qapi/qmp-dispatch.c qmp_dispatch
 */
export function qmpDispatchPrepare(mons: MonitorSet, cmds: readonly QmpCommand[], request: QObject, allowOob: boolean): DispatchPlan {
  const fail = (desc: string, cls: QmpErrorClass, id?: QObject): DispatchPlan =>
    ({ kind: 'done', rsp: withId(qmpErrorResponse({ cls, desc }), id) });
  if (!isQDict(request)) return fail('QMP input must be a JSON object', 'GenericError');
  const dict = request;
  const id = dict.map.get('id');
  const bad = qmpDispatchCheckObj(dict, allowOob);
  if (bad) return fail(bad, 'GenericError', id);
  let command = dict.map.get('execute');
  let oob = false;
  if (typeof command !== 'string') {
    command = dict.map.get('exec-oob') as string;
    oob = true;
  }
  const cmd = cmds.find((c) => c.name === command);
  if (!cmd) return fail(`The command ${command} has not been found`, 'CommandNotFound', id);
  if (cmd.enabled === false) return fail(`The command ${command} has been disabled for this instance`, 'CommandNotFound', id);
  if (oob && !cmd.allowOob) return fail(`The command ${command} does not support OOB`, 'GenericError', id);
  if (!mons.machine.machineReady() && !cmd.allowPreconfig) {
    return fail(`The command '${cmd.name}' is permitted only after machine initialization has completed`, 'GenericError', id);
  }
  const argsObj = dict.map.get('arguments');
  const args = argsObj !== undefined && isQDict(argsObj) ? argsObj : qdictNew();
  return { kind: 'run', cmd, args, id, oob };
}

/**
 * Second half: validate the arguments (the generated marshaller), run the handler with `mon` as
 * the current monitor, and build the response.
 */
export function qmpDispatchRun(mons: MonitorSet, mon: Monitor, plan: Extract<DispatchPlan, { kind: 'run' }>): QDict {
  const visited = qapiVisitArgs(plan.args, plan.cmd.args);
  let res: QmpResult;
  if (!visited.ok) {
    res = qmpFail(visited.desc);
  } else {
    const old = mons.cur;
    mons.cur = mon;
    try {
      res = plan.cmd.fn(mons, mon, visited.args);
    } finally {
      mons.cur = old;
    }
  }
  if (!res.ok) return withId(qmpErrorResponse(res.error), plan.id);
  return withId(qdictFrom([['return', res.value === undefined ? qdictNew() : res.value]]), plan.id);
}
