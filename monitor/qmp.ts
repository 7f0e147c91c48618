// The QMP front end (monitor/qmp.c): greeting and capability negotiation on every OPENED, the
// JSON streamer fed by monitor_qmp_read, the request queue (at most 8; without OOB the monitor is
// suspended after every request), out-of-band commands run at once, and the single dispatcher
// that serves monitors round-robin: a pass runs on the iohandler context, a non-coroutine handler
// in a bottom half of the main context, and the response one pass later, as in QEMU.

import { type Chardev, type QEMUChrEvent, CHR_EVENT_CLOSED, CHR_EVENT_OPENED, CHR_EVENT_NAMES, charBackendCreate,
  qemuChrFeInit, qemuChrFeSetHandlers } from '../core/char/index.ts';
import { aioBhScheduleOneshot } from '../core/loop/index.ts';
import { TRACE_CONTROL, traceEnter, traceExit, traceSpan } from '../core/trace/index.ts';
import type { MonitorQmp, MonitorSet, QmpRequest } from './monitor.ts';
import {
  monitorCanRead, monitorDataInit, monitorListAppend, monitorPuts, monitorResume, monitorSuspend,
} from './monitor.ts';
import { jsonMessageParserFeed, jsonMessageParserInit } from './json-streamer.ts';
import { qobjectToJson } from './json-writer.ts';
import { type QDict, type QObject, isQDict, qdictDel, qdictFrom, qdictPut } from './qobject.ts';
import { type DispatchPlan, qmpDispatchPrepare, qmpDispatchRun, qmpErrorResponse } from './qmp-dispatch.ts';
import { qmpQueryVersionValue } from './qmp-cmds-control.ts';

/** @qemu monitor/qmp.c QMP_REQ_QUEUE_LEN_MAX */
export const QMP_REQ_QUEUE_LEN_MAX = 8;

export interface QmpOptions {
  /** pretty=on: indented JSON. */
  pretty?: boolean;
  /**
   * Whether the chardev has QEMU_CHAR_FEATURE_GCONTEXT (socket, stdio, file, pty, mux...): then
   * QEMU runs the monitor in its I/O thread and offers "oob". Default true.
   */
  ioThread?: boolean;
}

/** Serialise and write one message. @qemu monitor/qmp.c qmp_send_response */
export function qmpSendResponse(mons: MonitorSet, mon: MonitorQmp, rsp: QObject): void {
  monitorPuts(mons, mon, qobjectToJson(rsp, mon.pretty) + '\n');
}

function qmpOobEnabled(mon: MonitorQmp): boolean {
  return mon.capab.oob;
}

/** In negotiation mode a CommandNotFound says to negotiate first. Then respond. */
function monitorQmpRespond(mons: MonitorSet, mon: MonitorQmp, rsp: QDict, negotiating: boolean): void {
  const error = rsp.map.get('error');
  if (negotiating && error !== undefined && isQDict(error) && error.map.get('class') === 'CommandNotFound') {
    qdictDel(error, 'desc');
    qdictPut(error, 'desc', "Expecting capabilities negotiation with 'qmp_capabilities'");
  }
  qmpSendResponse(mons, mon, rsp);
}

function commandsOf(mons: MonitorSet, mon: MonitorQmp): typeof mons.qmpCommands {
  return mon.commands === 'negotiation' ? mons.qmpCapNegotiationCommands : mons.qmpCommands;
}

/**
 * Dispatch `req` on `mon`. Out-of-band requests (and everything but the handler of in-band ones)
 * complete synchronously; an in-band handler runs from a main-context BH and the response is
 * sent from the dispatcher one iohandler pass later; `done` runs after the response.
 * @qemu monitor/qmp.c monitor_qmp_dispatch + qapi/qmp-dispatch.c qmp_dispatch
 */
function monitorQmpDispatch(mons: MonitorSet, mon: MonitorQmp, req: QObject, inBand: boolean, done: () => void): void {
  const negotiating = mon.commands === 'negotiation';
  const plan: DispatchPlan = traceSpan(mons.m, TRACE_CONTROL, 'monitor_qmp_dispatch', { mon: mon.id }, () =>
    traceSpan(mons.m, TRACE_CONTROL, 'qmp_dispatch', undefined, () =>
      qmpDispatchPrepare(mons, commandsOf(mons, mon), req, qmpOobEnabled(mon))));
  if (plan.kind === 'done') {
    monitorQmpRespond(mons, mon, plan.rsp, negotiating);
    done();
    return;
  }
  const run = (): QDict => traceSpan(mons.m, TRACE_CONTROL, `qmp_${plan.cmd.name.replace(/-/g, '_')}`, undefined,
    () => qmpDispatchRun(mons, mon, plan));
  if (!inBand || plan.cmd.coroutine) {
    monitorQmpRespond(mons, mon, run(), negotiating);
    done();
    return;
  }
  aioBhScheduleOneshot(mons.m.loop.aio, 'do_qmp_dispatch_bh', () => {
    const rsp = run();
    // aio_co_wake: the dispatcher coroutine lives in the iohandler context.
    aioBhScheduleOneshot(mons.m.loop.iohandler, 'monitor_qmp_dispatcher_co', () => {
      monitorQmpRespond(mons, mon, rsp, negotiating);
      done();
    });
  });
}

/** Pop the first request of the first monitor that has one; move that monitor to the tail. */
function requestsPopAny(mons: MonitorSet): { mon: MonitorQmp; req: QmpRequest } | null {
  for (let i = 0; i < mons.list.length; i++) {
    const mon = mons.list[i]!;
    if (mon.kind !== 'qmp') continue;
    const req = mon.requests.shift();
    if (req) {
      mons.list.splice(i, 1);
      mons.list.push(mon);
      return { mon, req };
    }
  }
  return null;
}

/** One pass of the dispatcher coroutine's loop. @qemu monitor/qmp.c monitor_qmp_dispatcher_co */
function monitorQmpDispatcherPass(mons: MonitorSet): void {
  const d = mons.dispatcher;
  d.busy = false;
  const got = requestsPopAny(mons);
  if (!got) return; // yield until handle_qmp_command wakes us
  const { mon, req } = got;
  const oobEnabled = qmpOobEnabled(mon);
  if (oobEnabled && mon.requests.length === QMP_REQ_QUEUE_LEN_MAX - 1) monitorResume(mons, mon);
  d.busy = true;
  d.handled++;
  const finish = (): void => {
    if (!oobEnabled) monitorResume(mons, mon);
    // Yield and reschedule so the main loop stays responsive.
    aioBhScheduleOneshot(mons.m.loop.iohandler, 'monitor_qmp_dispatcher_co', () => monitorQmpDispatcherPass(mons));
  };
  if (req.req !== undefined) {
    monitorQmpDispatch(mons, mon, req.req, true, finish);
  } else {
    qmpSendResponse(mons, mon, qmpErrorResponse({ cls: 'GenericError', desc: req.err ?? '' }));
    finish();
  }
}

/** Wake the dispatcher unless it is already busy. */
function qmpDispatcherWake(mons: MonitorSet): void {
  if (mons.dispatcher.busy) return;
  mons.dispatcher.busy = true;
  aioBhScheduleOneshot(mons.m.loop.iohandler, 'monitor_qmp_dispatcher_co', () => monitorQmpDispatcherPass(mons));
}

/** A complete JSON value or a parse error. @qemu monitor/qmp.c handle_qmp_command */
function handleQmpCommand(mons: MonitorSet, mon: MonitorQmp, req: QObject | undefined, err: string | null): void {
  const opened = traceEnter(mons.m, TRACE_CONTROL, 'handle_qmp_command', { mon: mon.id, error: err });
  if (req !== undefined && isQDict(req) && req.map.has('exec-oob') && !req.map.has('execute')) {
    monitorQmpDispatch(mons, mon, req, false, () => {});
  } else {
    if (!qmpOobEnabled(mon) || mon.requests.length === QMP_REQ_QUEUE_LEN_MAX - 1) monitorSuspend(mons, mon);
    mon.requests.push({ req, err });
    qmpDispatcherWake(mons);
  }
  traceExit(mons.m, opened, 'handle_qmp_command');
}

/** Input bytes. @qemu monitor/qmp.c monitor_qmp_read */
export function monitorQmpRead(mons: MonitorSet, mon: MonitorQmp, buf: Uint8Array): void {
  const opened = traceEnter(mons.m, TRACE_CONTROL, 'monitor_qmp_read', { mon: mon.id, len: buf.length });
  jsonMessageParserFeed(mon.parser, buf, (msg) => {
    if (msg.error === null) handleQmpCommand(mons, mon, msg.value, null);
    else handleQmpCommand(mons, mon, undefined, msg.error);
  });
  traceExit(mons.m, opened, 'monitor_qmp_read');
}

/** The greeting object. @qemu monitor/qmp.c qmp_greeting */
export function qmpGreeting(mons: MonitorSet, mon: MonitorQmp): QDict {
  const caps: QObject[] = mon.capabOffered.oob ? ['oob'] : [];
  return qdictFrom([['QMP', qdictFrom([['version', qmpQueryVersionValue(mons)], ['capabilities', caps]])]]);
}

/** Drop queued requests; resume if they had suspended the monitor. */
function cleanupQueueAndResume(mons: MonitorSet, mon: MonitorQmp): void {
  const needResume = (!qmpOobEnabled(mon) || mon.requests.length === QMP_REQ_QUEUE_LEN_MAX) && mon.requests.length > 0;
  mon.requests = [];
  if (needResume) monitorResume(mons, mon);
}

/** Chardev events. @qemu monitor/qmp.c monitor_qmp_event */
export function monitorQmpEvent(mons: MonitorSet, mon: MonitorQmp, event: QEMUChrEvent): void {
  const opened = traceEnter(mons.m, TRACE_CONTROL, 'monitor_qmp_event', { mon: mon.id, event: CHR_EVENT_NAMES[event] });
  if (event === CHR_EVENT_OPENED) {
    mon.commands = 'negotiation';
    mon.capabOffered = { oob: mon.useIoThread };
    mon.capab = { oob: false };
    qmpSendResponse(mons, mon, qmpGreeting(mons, mon));
    mons.monRefcount++;
  } else if (event === CHR_EVENT_CLOSED) {
    cleanupQueueAndResume(mons, mon);
    mon.parser = jsonMessageParserInit();
    mons.monRefcount--;
  }
  traceExit(mons.m, opened, 'monitor_qmp_event');
}

/**
 * Create a QMP monitor on `chr` (-qmp / -mon mode=control). detvm installs the handlers at once;
 * QEMU with an I/O thread does it from a bottom half (no visible difference on a fresh chardev).
 * @qemu monitor/qmp.c monitor_init_qmp
 */
export function monitorInitQmp(mons: MonitorSet, chr: Chardev, opts: QmpOptions = {}): MonitorQmp | { error: string } {
  const be = charBackendCreate();
  const err = qemuChrFeInit(be, chr);
  if (err) return { error: err.desc };
  const useIoThread = opts.ioThread ?? true;
  const mon: MonitorQmp = {
    ...monitorDataInit(mons, be, false, useIoThread), kind: 'qmp', pretty: opts.pretty ?? false,
    parser: jsonMessageParserInit(), commands: 'negotiation', capabOffered: { oob: useIoThread },
    capab: { oob: false }, requests: [],
  };
  qemuChrFeSetHandlers(be, () => monitorCanRead(mon), (_o, buf) => monitorQmpRead(mons, mon, buf),
    (_o, ev) => monitorQmpEvent(mons, mon, ev), null, mon, true);
  monitorListAppend(mons, mon);
  return mon;
}
