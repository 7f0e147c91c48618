// A pass over a whole log before replaying it: how it ends (the END event's position, or the
// last complete event of an interrupted recording), its checkpoints and its event counts by
// kind. The stepper lists events from here and seeks refuse targets past the end.

import { LogCorruptError } from './log-codec.ts';
import { type LogEvent, logCursorCreate, logEventRead } from './log-events.ts';

export interface LogIndex {
  events: number;
  byKind: Record<string, number>;
  /** The END event, or null when the recording was interrupted. */
  end: Extract<LogEvent, { k: 'end' }> | null;
  /** Position of the last complete event (iteration, icount). */
  lastIteration: number;
  lastIcount: number;
  checkpoints: number;
  /** A decoding error past the header: the log is damaged from there on. */
  corrupt: string | null;
  /** The bytes end inside an event (the last write of an interrupted recording). */
  cutInEvent: boolean;
  bytes: number;
}

/** Decode every event of `log` after the header (`eventsAt`). */
export function replayLogScan(log: Uint8Array, eventsAt: number): LogIndex {
  const idx: LogIndex = {
    events: 0, byKind: {}, end: null, lastIteration: 0, lastIcount: 0, checkpoints: 0, corrupt: null, bytes: log.length,
    cutInEvent: false,
  };
  const cur = logCursorCreate(eventsAt);
  for (;;) {
    let e: LogEvent | null;
    try {
      e = logEventRead(log, cur);
    } catch (err) {
      if (!(err instanceof LogCorruptError)) throw err;
      if (err.atEnd) idx.cutInEvent = true;
      else idx.corrupt = err.message;
      break;
    }
    if (e === null) break;
    idx.events++;
    idx.byKind[e.k] = (idx.byKind[e.k] ?? 0) + 1;
    idx.lastIteration = e.iteration;
    idx.lastIcount = e.icount;
    if (e.k === 'checkpoint') idx.checkpoints++;
    if (e.k === 'end') {
      idx.end = e;
      break;
    }
  }
  return idx;
}

/** Up to `max` events starting at byte `pos` with cursor values `from` (the stepper's listing). */
export function replayLogEventsFrom(log: Uint8Array, from: { pos: number; iteration: number; icount: number; mono: number; wall: number }, max: number): LogEvent[] {
  const cur = { ...from };
  const out: LogEvent[] = [];
  for (let i = 0; i < max; i++) {
    let e: LogEvent | null;
    try {
      e = logEventRead(log, cur);
    } catch {
      break;
    }
    if (e === null) break;
    out.push(e);
  }
  return out;
}
