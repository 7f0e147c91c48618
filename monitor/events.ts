// QAPI events to QMP clients (monitor/monitor.c monitor_qapi_event_*, qapi/qmp-event.c): the
// event object with a HOST-clock timestamp, a re-entrancy queue, rate limiting of the throttled
// events (1 s per event, or per event and key), and fan-out to every QMP monitor that finished
// capability negotiation, in mon_list order (most recently created first).

import { QEMU_CLOCK_REALTIME, hostWallClock, qemuClockGetNs, timerModNs, timerNew } from '../core/loop/index.ts';
import type { QapiEvent } from '../core/loop/index.ts';
import { TRACE_CONTROL, traceEvent } from '../core/trace/index.ts';
import type { EventRateState, MonitorSet } from './monitor.ts';
import { type QDict, type QObject, isQDict, qdictFrom, qnumInt, qobjectFromPlain } from './qobject.ts';
import { qmpSendResponse } from './qmp.ts';

/** Throttle period of rate-limited events: 1000 ms. */
export const EVENT_RATE_NS = 1000 * 1_000_000;

/** Rate-limited events and the data member that keys them (null: one state per event). */
const RATE_LIMITED: Record<string, string | null> = {
  RTC_CHANGE: null,
  WATCHDOG: null,
  BALLOON_CHANGE: null,
  QUORUM_REPORT_BAD: 'node-name',
  QUORUM_FAILURE: null,
  VSERPORT_CHANGE: 'id',
  MEMORY_DEVICE_SIZE_CHANGE: 'qom-path',
};

/** {"timestamp": {...}, "event": NAME[, "data": {...}]}. @qemu qapi/qmp-event.c qmp_event_build_dict */
export function qmpEventBuildDict(mons: MonitorSet, name: string, data: QObject | undefined): QDict {
  // g_get_real_time(): wall-clock seconds and microseconds from the HOST clock.
  const { seconds, microseconds } = hostWallClock(mons.m.clocks);
  const ts = qdictFrom([['seconds', qnumInt(seconds)], ['microseconds', qnumInt(microseconds)]]);
  const d = qdictFrom([['event', name], ['timestamp', ts]]);
  if (data !== undefined) d.map.set('data', data);
  return d;
}

/** Send to every negotiated QMP monitor. @qemu monitor/monitor.c monitor_qapi_event_emit */
function monitorQapiEventEmit(mons: MonitorSet, event: string, dict: QObject): void {
  traceEvent(mons.m, TRACE_CONTROL, 'monitor_protocol_event_emit', { event });
  for (const mon of [...mons.list]) {
    if (mon.kind === 'qmp' && mon.commands === 'full') qmpSendResponse(mons, mon, dict);
  }
}

function rateKey(event: string, dict: QObject): string {
  const member = RATE_LIMITED[event];
  if (!member || !isQDict(dict)) return event;
  const data = dict.map.get('data');
  const v = data !== undefined && isQDict(data) ? data.map.get(member) : undefined;
  return `${event}\0${typeof v === 'string' ? v : ''}`;
}

/** Timer callback: send the stored event and re-arm, or forget the state. @qemu monitor_qapi_event_handler */
function monitorQapiEventHandler(mons: MonitorSet, st: EventRateState, rearm: () => void): void {
  if (st.pending !== null) {
    const d = st.pending;
    st.pending = null;
    monitorQapiEventEmit(mons, st.event, d);
    rearm();
  } else {
    st.timerArmed = false;
    mons.events.rate.delete(st.key);
  }
}

/** @qemu monitor/monitor.c monitor_qapi_event_queue_no_reenter */
function monitorQapiEventQueueNoReenter(mons: MonitorSet, event: string, dict: QObject): void {
  if (!(event in RATE_LIMITED)) {
    monitorQapiEventEmit(mons, event, dict);
    return;
  }
  const key = rateKey(event, dict);
  const st = mons.events.rate.get(key);
  if (st) {
    st.pending = dict; // replaces a stored event, if any
    return;
  }
  monitorQapiEventEmit(mons, event, dict);
  const fresh: EventRateState = { event, key, pending: null, timerArmed: true };
  mons.events.rate.set(key, fresh);
  const timer = timerNew(mons.m.loop.tlg, QEMU_CLOCK_REALTIME, 1, `monitor_qapi_event_handler:${event}`, () =>
    monitorQapiEventHandler(mons, fresh, arm));
  function arm(): void {
    timerModNs(timer, qemuClockGetNs(mons.m.clocks, QEMU_CLOCK_REALTIME) + EVENT_RATE_NS);
  }
  arm();
}

/**
 * Emit a QAPI event to the QMP monitors. Events raised while one is being emitted are queued and
 * sent after it, in order. @qemu monitor/monitor.c qapi_event_emit
 */
export function qapiEventEmit(mons: MonitorSet, ev: QapiEvent): void {
  const data = ev.data === undefined ? undefined : qobjectFromPlain(ev.data);
  const dict = qmpEventBuildDict(mons, ev.event, data);
  const q = mons.events;
  q.queue.push({ event: ev.event, dict });
  if (q.reentered) return;
  q.reentered = true;
  try {
    for (let i = 0; q.queue.length > 0; i++) {
      if (i > 100_000) throw new Error('qapi_event_emit: events keep raising events');
      const next = q.queue.shift()!;
      monitorQapiEventQueueNoReenter(mons, next.event, next.dict);
    }
  } finally {
    q.reentered = false;
  }
}
