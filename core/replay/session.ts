// Starting a recording or a replay for the composition root (index.ts): the header, the engine,
// the host clock to give the machine, and the attachment once the machine exists. Kept here so
// the composition root only says what to record and where the bytes go.

import type { ChardevIo } from '../host/index.ts';
import type { HostClockSource, LoopMachine } from '../loop/index.ts';
import { type ReplayExpect, type ReplayHeader, type ReplayHeaderInit, replayHeaderCheck, replayHeaderCreate, replayHeaderDecode } from './log-header.ts';
import {
  type RecordEngine, replayRecordAttach, replayRecordClock, replayRecordCreate, replayRecordIoCall,
} from './record.ts';
import { replayRecordIo } from './record-io.ts';
import { type PlayEngine, replayPlayAttach, replayPlayClock, replayPlayCreate } from './play.ts';
import { replayPlayIo, replayPlayIoCall, replayPlayVirtualIo } from './play-io.ts';
import type { ReplayMachine } from './replay-state.ts';

/** A recording or a replay being set up, as the composition root holds it. */
export type ReplaySession =
  | { kind: 'record'; rec: RecordEngine; header: ReplayHeader }
  | { kind: 'play'; p: PlayEngine; header: ReplayHeader };

/** Start a recording; `sink` receives the bytes (null: keep them in memory). */
export function replaySessionRecord(
  init: ReplayHeaderInit, sink: ((chunk: Uint8Array) => void) | null, close: (() => void) | null = null,
): ReplaySession {
  const header = replayHeaderCreate(init);
  return { kind: 'record', rec: replayRecordCreate({ header, sink, close }), header };
}

/**
 * Open a log for replay. `name` is for messages.
 * @throws ReplayRefusedError when the log is not one, is damaged, or does not match `expect`.
 */
export function replaySessionPlay(log: Uint8Array, name: string, expect: ReplayExpect): ReplaySession {
  const { header, eventsAt } = replayHeaderDecode(log, name);
  replayHeaderCheck(header, name, expect);
  return { kind: 'play', p: replayPlayCreate(log, header, eventsAt, name), header };
}

/** The host clock the machine must use: the recording wrapper, or the log's samples. */
export function replaySessionClock(s: ReplaySession, real: HostClockSource | null): HostClockSource | null {
  if (s.kind === 'record') return real ? replayRecordClock(s.rec, real) : null;
  return s.header.mode === 'live' ? replayPlayClock(s.p) : null;
}

/**
 * Attach to the machine under construction (before its chardevs exist). Returns the chardev I/O
 * to install: the recording wrapper around `live`, the log's I/O, or null to keep the default.
 */
export function replaySessionAttach(s: ReplaySession, m: ReplayMachine, live: ChardevIo | null, memory: () => ChardevIo): ChardevIo | null {
  if (s.kind === 'record') {
    replayRecordAttach(s.rec, m);
    return live ? replayRecordIo(s.rec, live) : null;
  }
  replayPlayAttach(s.p, m);
  return s.header.mode === 'live' ? replayPlayIo(s.p, m as LoopMachine) : replayPlayVirtualIo(s.p, m as LoopMachine, memory());
}

/** A call to the host outside the chardev providers (a directory listing for completion). */
export function replaySessionHostCall<T>(s: ReplaySession, op: string, args: unknown, fn: () => T): T {
  if (s.kind === 'record') return replayRecordIoCall(s.rec, op, args, fn);
  return replayPlayIoCall<T>(s.p, op, args) as T;
}
