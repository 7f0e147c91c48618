// The events of a record/replay log (FORMAT.md) and their byte encoding. Every event starts with
// its kind (one byte), the main-loop iteration and the instruction count at which it happened,
// both as varint deltas from the previous event, so the stream is positioned exactly while
// staying small. Values that follow a previous one (clock samples) are zigzag deltas too. The
// decoder keeps the running values in a plain-data cursor, so a snapshot can rewind it.
// Invariants: iterations and instruction counts never decrease along the stream.

import type { HostInput } from '../loop/index.ts';
import type { NetConnInfo, SocketAddress } from '../host/index.ts';
import {
  type ByteCursor, type ByteWriter, LogCorruptError, getBytes, getString, getSvarint, getU32, getU8, getUvarint,
  putBytes, putString, putSvarint, putU32, putU8, putUvarint,
} from './log-codec.ts';

/** Event kind codes. Gaps are reserved; a reader refuses codes it does not know. */
export const EV = {
  CLOCK_MONO: 1,
  CLOCK_WALL: 2,
  ARRIVE: 3,
  ARRIVE_FEED: 4,
  FD_OPEN: 5,
  LISTENER_SETTLED: 6,
  CONNECTOR_SET: 7,
  SIGNAL: 8,
  STDIO_SIGNAL: 9,
  CHR_SEND: 10,
  SCHEDULE: 11,
  HORIZON: 12,
  SLICE_CAP: 13,
  IO_CALL: 14,
  WRITE: 15,
  CHECKPOINT: 16,
  END: 17,
} as const;

/**
 * The self-description written into every header: each kind's name and field layout after the
 * common prefix (kind:u8, iteration delta:uvarint, icount delta:uvarint).
 */
export const EVENT_SCHEMA: Record<number, { name: string; fields: string[] }> = {
  [EV.CLOCK_MONO]: { name: 'clock-mono', fields: ['delta:svarint'] },
  [EV.CLOCK_WALL]: { name: 'clock-wall', fields: ['delta:svarint'] },
  [EV.ARRIVE]: { name: 'arrive', fields: ['input'] },
  [EV.ARRIVE_FEED]: { name: 'arrive-feed', fields: ['ordinal:uvarint', 'input'] },
  [EV.FD_OPEN]: { name: 'fd-open', fields: ['fd:uvarint', 'listener:u8', 'name:string', 'info:json'] },
  [EV.LISTENER_SETTLED]: { name: 'listener-settled', fields: ['fd:uvarint', 'status:string', 'error:json', 'local:json'] },
  [EV.CONNECTOR_SET]: { name: 'connector-set', fields: ['fd:uvarint', 'field:string', 'value:json'] },
  [EV.SIGNAL]: { name: 'signal', fields: ['signal:uvarint', 'pid:uvarint'] },
  [EV.STDIO_SIGNAL]: { name: 'stdio-signal', fields: ['signal:string'] },
  [EV.CHR_SEND]: { name: 'chr-send', fields: ['chardev:string', 'data:bytes'] },
  [EV.SCHEDULE]: { name: 'schedule', fields: ['atNs:uvarint', 'input'] },
  [EV.HORIZON]: { name: 'horizon', fields: ['ns+1:uvarint (0: none)'] },
  [EV.SLICE_CAP]: { name: 'slice-cap', fields: ['insns+1:uvarint (0: none)'] },
  [EV.IO_CALL]: { name: 'io-call', fields: ['op:string', 'args:json', 'result:json'] },
  [EV.WRITE]: { name: 'write', fields: ['fd:uvarint', 'index:uvarint', 'result:svarint', 'writable:u8'] },
  [EV.CHECKPOINT]: { name: 'checkpoint', fields: ['state:hash', 'trace:hash', 'traceSeq:uvarint', 'output:hash'] },
  [EV.END]: {
    name: 'end',
    fields: ['exit+1:uvarint (0: running)', 'reason:string', 'state:hash', 'trace:hash', 'traceSeq:uvarint', 'output:hash'],
  },
};
/** How an `input` field is laid out (inside ARRIVE, ARRIVE_FEED and SCHEDULE). */
export const INPUT_SCHEMA = 'input: kind:u8 (1 data, 2 hup, 3 accept, 4 writable), fd:uvarint, then data:bytes | conn:uvarint | writable:u8';

/** A 64-bit hash as 16 hex digits. */
export type HashHex = string;

/** Fields every decoded event carries: where it happened. */
interface At {
  iteration: number;
  icount: number;
}

export type LogEvent = At & (
  | { k: 'clock'; which: 'mono' | 'wall'; value: number }
  | { k: 'arrive'; input: HostInput; ordinal: number | null }
  | { k: 'fd-open'; fd: number; listener: boolean; name: string; info: NetConnInfo | null }
  | { k: 'settled'; fd: number; status: 'listening' | 'failed'; error: string | null; local: SocketAddress | null }
  | { k: 'connector'; fd: number; field: 'status' | 'error'; value: unknown }
  | { k: 'signal'; signal: number; pid: number }
  | { k: 'stdio-signal'; signal: 'SIGINT' | 'SIGQUIT' }
  | { k: 'chr-send'; chardev: string; data: Uint8Array }
  | { k: 'schedule'; atNs: number; input: HostInput }
  | { k: 'horizon'; ns: number | null }
  | { k: 'slice-cap'; insns: number | null }
  | { k: 'io'; op: string; args: string; result: string }
  | { k: 'write'; fd: number; index: number; result: number; writable: boolean }
  | { k: 'checkpoint'; state: HashHex; trace: HashHex; traceSeq: number; output: HashHex }
  | { k: 'end'; exit: number | null; reason: string; state: HashHex; trace: HashHex; traceSeq: number; output: HashHex }
);

/** Events that happen between main-loop iterations (host callbacks, library calls). */
export function logEventIsGap(e: LogEvent): boolean {
  switch (e.k) {
    case 'arrive': return e.ordinal === null;
    case 'fd-open': case 'settled': case 'connector': case 'signal': case 'stdio-signal': case 'chr-send':
    case 'schedule': case 'horizon': case 'slice-cap':
      return true;
    default:
      return false;
  }
}

/** The running values the deltas refer to: plain data, saved with snapshots. */
export interface LogCursor extends ByteCursor {
  iteration: number;
  icount: number;
  mono: number;
  wall: number;
}

export function logCursorCreate(pos: number): LogCursor {
  return { pos, iteration: 0, icount: 0, mono: 0, wall: 0 };
}

/** Set `dst` to where `src` is (no allocation: replay moves cursors once per event). */
export function logCursorSet(dst: LogCursor, src: LogCursor): void {
  dst.pos = src.pos;
  dst.iteration = src.iteration;
  dst.icount = src.icount;
  dst.mono = src.mono;
  dst.wall = src.wall;
}

const INPUT_DATA = 1;
const INPUT_HUP = 2;
const INPUT_ACCEPT = 3;
const INPUT_WRITABLE = 4;

function putInput(w: ByteWriter, i: HostInput): void {
  switch (i.kind) {
    case 'data': putU8(w, INPUT_DATA); putUvarint(w, i.fd); putBytes(w, i.data); return;
    case 'hup': putU8(w, INPUT_HUP); putUvarint(w, i.fd); return;
    case 'accept': putU8(w, INPUT_ACCEPT); putUvarint(w, i.fd); putUvarint(w, i.conn); return;
    case 'writable': putU8(w, INPUT_WRITABLE); putUvarint(w, i.fd); putU8(w, i.writable ? 1 : 0); return;
  }
}

function getInput(b: Uint8Array, c: ByteCursor): HostInput {
  const at = c.pos;
  const kind = getU8(b, c);
  const fd = getUvarint(b, c);
  switch (kind) {
    case INPUT_DATA: return { kind: 'data', fd, data: getBytes(b, c).slice() };
    case INPUT_HUP: return { kind: 'hup', fd };
    case INPUT_ACCEPT: return { kind: 'accept', fd, conn: getUvarint(b, c) };
    case INPUT_WRITABLE: return { kind: 'writable', fd, writable: getU8(b, c) !== 0 };
    default: throw new LogCorruptError(at, `unknown input kind ${kind}`);
  }
}

function putHash(w: ByteWriter, h: HashHex): void {
  putU32(w, parseInt(h.slice(0, 8), 16));
  putU32(w, parseInt(h.slice(8, 16), 16));
}

function getHash(b: Uint8Array, c: ByteCursor): HashHex {
  return getU32(b, c).toString(16).padStart(8, '0') + getU32(b, c).toString(16).padStart(8, '0');
}

function putJson(w: ByteWriter, v: unknown): void {
  putString(w, v === undefined ? '' : JSON.stringify(v));
}

function getJson(b: Uint8Array, c: ByteCursor): unknown {
  const at = c.pos;
  const s = getString(b, c);
  if (s === '') return undefined;
  try {
    return JSON.parse(s) as unknown;
  } catch {
    throw new LogCorruptError(at, 'a JSON field does not parse');
  }
}

/** An event to encode: a LogEvent without its position (the writer supplies it). */
export type LogEventBody = LogEvent extends infer E ? E extends At ? Omit<E, 'iteration' | 'icount'> : never : never;

/**
 * Append `e` positioned at (`iteration`, `icount`); `cur` holds the previous event's values and
 * is advanced. Returns nothing: the bytes are in `w`.
 */
export function logEventWrite(w: ByteWriter, cur: LogCursor, iteration: number, icount: number, e: LogEventBody): void {
  if (iteration < cur.iteration || icount < cur.icount) {
    throw new RangeError(`log position went back from (${cur.iteration}, ${cur.icount}) to (${iteration}, ${icount})`);
  }
  putU8(w, kindOf(e));
  putUvarint(w, iteration - cur.iteration);
  putUvarint(w, icount - cur.icount);
  cur.iteration = iteration;
  cur.icount = icount;
  writeBody(w, cur, e);
}

function kindOf(e: LogEventBody): number {
  switch (e.k) {
    case 'clock': return e.which === 'mono' ? EV.CLOCK_MONO : EV.CLOCK_WALL;
    case 'arrive': return e.ordinal === null ? EV.ARRIVE : EV.ARRIVE_FEED;
    case 'fd-open': return EV.FD_OPEN;
    case 'settled': return EV.LISTENER_SETTLED;
    case 'connector': return EV.CONNECTOR_SET;
    case 'signal': return EV.SIGNAL;
    case 'stdio-signal': return EV.STDIO_SIGNAL;
    case 'chr-send': return EV.CHR_SEND;
    case 'schedule': return EV.SCHEDULE;
    case 'horizon': return EV.HORIZON;
    case 'slice-cap': return EV.SLICE_CAP;
    case 'io': return EV.IO_CALL;
    case 'write': return EV.WRITE;
    case 'checkpoint': return EV.CHECKPOINT;
    case 'end': return EV.END;
  }
}

function writeBody(w: ByteWriter, cur: LogCursor, e: LogEventBody): void {
  switch (e.k) {
    case 'clock':
      if (e.which === 'mono') {
        putSvarint(w, e.value - cur.mono);
        cur.mono = e.value;
      } else {
        putSvarint(w, e.value - cur.wall);
        cur.wall = e.value;
      }
      return;
    case 'arrive':
      if (e.ordinal !== null) putUvarint(w, e.ordinal);
      putInput(w, e.input);
      return;
    case 'fd-open': putUvarint(w, e.fd); putU8(w, e.listener ? 1 : 0); putString(w, e.name); putJson(w, e.info); return;
    case 'settled': putUvarint(w, e.fd); putString(w, e.status); putJson(w, e.error); putJson(w, e.local); return;
    case 'connector': putUvarint(w, e.fd); putString(w, e.field); putJson(w, e.value); return;
    case 'signal': putUvarint(w, e.signal); putUvarint(w, e.pid); return;
    case 'stdio-signal': putString(w, e.signal); return;
    case 'chr-send': putString(w, e.chardev); putBytes(w, e.data); return;
    case 'schedule': putUvarint(w, e.atNs); putInput(w, e.input); return;
    case 'horizon': putUvarint(w, e.ns === null ? 0 : e.ns + 1); return;
    case 'slice-cap': putUvarint(w, e.insns === null ? 0 : e.insns + 1); return;
    case 'io': putString(w, e.op); putString(w, e.args); putString(w, e.result); return;
    case 'write':
      putUvarint(w, e.fd); putUvarint(w, e.index); putSvarint(w, e.result); putU8(w, e.writable ? 1 : 0);
      return;
    case 'checkpoint':
      putHash(w, e.state); putHash(w, e.trace); putUvarint(w, e.traceSeq); putHash(w, e.output);
      return;
    case 'end':
      putUvarint(w, e.exit === null ? 0 : e.exit + 1); putString(w, e.reason);
      putHash(w, e.state); putHash(w, e.trace); putUvarint(w, e.traceSeq); putHash(w, e.output);
      return;
  }
}

/**
 * Decode the event at `cur.pos`, advancing `cur`. Returns null at the end of the bytes.
 * @throws LogCorruptError for bytes that do not decode.
 */
export function logEventRead(b: Uint8Array, cur: LogCursor): LogEvent | null {
  if (cur.pos >= b.length) return null;
  const at = cur.pos;
  const kind = getU8(b, cur);
  const iteration = cur.iteration + getUvarint(b, cur);
  const icount = cur.icount + getUvarint(b, cur);
  // The body's object gets its position added in place (the same keys, in the same order, as a
  // copy with them would have, without the copy).
  const e = readBody(b, cur, kind, at) as LogEventBody & At;
  e.iteration = iteration;
  e.icount = icount;
  cur.iteration = iteration;
  cur.icount = icount;
  return e as LogEvent;
}

function readBody(b: Uint8Array, c: LogCursor, kind: number, at: number): LogEventBody {
  switch (kind) {
    case EV.CLOCK_MONO: c.mono += getSvarint(b, c); return { k: 'clock', which: 'mono', value: c.mono };
    case EV.CLOCK_WALL: c.wall += getSvarint(b, c); return { k: 'clock', which: 'wall', value: c.wall };
    case EV.ARRIVE: return { k: 'arrive', ordinal: null, input: getInput(b, c) };
    case EV.ARRIVE_FEED: {
      const ordinal = getUvarint(b, c);
      return { k: 'arrive', ordinal, input: getInput(b, c) };
    }
    case EV.FD_OPEN: {
      const fd = getUvarint(b, c);
      const listener = getU8(b, c) !== 0;
      const name = getString(b, c);
      return { k: 'fd-open', fd, listener, name, info: (getJson(b, c) ?? null) as NetConnInfo | null };
    }
    case EV.LISTENER_SETTLED: {
      const fd = getUvarint(b, c);
      const status = getString(b, c);
      if (status !== 'listening' && status !== 'failed') throw new LogCorruptError(at, `bad listener status '${status}'`);
      const error = (getJson(b, c) ?? null) as string | null;
      return { k: 'settled', fd, status, error, local: (getJson(b, c) ?? null) as SocketAddress | null };
    }
    case EV.CONNECTOR_SET: {
      const fd = getUvarint(b, c);
      const field = getString(b, c);
      if (field !== 'status' && field !== 'error') throw new LogCorruptError(at, `bad connector field '${field}'`);
      return { k: 'connector', fd, field, value: getJson(b, c) ?? null };
    }
    case EV.SIGNAL: {
      const signal = getUvarint(b, c);
      return { k: 'signal', signal, pid: getUvarint(b, c) };
    }
    case EV.STDIO_SIGNAL: {
      const s = getString(b, c);
      if (s !== 'SIGINT' && s !== 'SIGQUIT') throw new LogCorruptError(at, `bad stdio signal '${s}'`);
      return { k: 'stdio-signal', signal: s };
    }
    case EV.CHR_SEND: {
      const chardev = getString(b, c);
      return { k: 'chr-send', chardev, data: getBytes(b, c).slice() };
    }
    case EV.SCHEDULE: {
      const atNs = getUvarint(b, c);
      return { k: 'schedule', atNs, input: getInput(b, c) };
    }
    case EV.HORIZON: {
      const v = getUvarint(b, c);
      return { k: 'horizon', ns: v === 0 ? null : v - 1 };
    }
    case EV.SLICE_CAP: {
      const v = getUvarint(b, c);
      return { k: 'slice-cap', insns: v === 0 ? null : v - 1 };
    }
    case EV.IO_CALL: {
      const op = getString(b, c);
      const args = getString(b, c);
      return { k: 'io', op, args, result: getString(b, c) };
    }
    case EV.WRITE: {
      const fd = getUvarint(b, c);
      const index = getUvarint(b, c);
      const result = getSvarint(b, c);
      return { k: 'write', fd, index, result, writable: getU8(b, c) !== 0 };
    }
    case EV.CHECKPOINT: {
      const state = getHash(b, c);
      const trace = getHash(b, c);
      const traceSeq = getUvarint(b, c);
      return { k: 'checkpoint', state, trace, traceSeq, output: getHash(b, c) };
    }
    case EV.END: {
      const exit = getUvarint(b, c);
      const reason = getString(b, c);
      const state = getHash(b, c);
      const trace = getHash(b, c);
      const traceSeq = getUvarint(b, c);
      return { k: 'end', exit: exit === 0 ? null : exit - 1, reason, state, trace, traceSeq, output: getHash(b, c) };
    }
    default:
      throw new LogCorruptError(at, `unknown event kind ${kind}`);
  }
}

/** One line describing `e`, for divergence reports and the stepper. */
export function logEventDescribe(e: LogEvent): string {
  const pos = `iteration ${e.iteration}, icount ${e.icount}`;
  const what = ((): string => {
    switch (e.k) {
      case 'clock': return `host ${e.which === 'mono' ? 'monotonic' : 'wall'} clock read = ${e.value} ns`;
      case 'arrive': return `${e.ordinal === null ? 'host input' : `file input (read ${e.ordinal})`} ${inputText(e.input)}`;
      case 'fd-open': return `host opened ${e.listener ? 'listener' : 'connection'} fd ${e.fd} '${e.name}'`;
      case 'settled': return `listener fd ${e.fd} ${e.status}${e.error ? `: ${e.error}` : ''}`;
      case 'connector': return `connector fd ${e.fd} ${e.field} = ${JSON.stringify(e.value)}`;
      case 'signal': return `signal ${e.signal} from pid ${e.pid}`;
      case 'stdio-signal': return `${e.signal} typed on stdio`;
      case 'chr-send': return `${e.data.length} bytes sent to chardev '${e.chardev}'`;
      case 'schedule': return `input scheduled at ${e.atNs} ns: ${inputText(e.input)}`;
      case 'horizon': return `run horizon ${e.ns === null ? 'none' : `${e.ns} ns`}`;
      case 'slice-cap': return `vCPU slice cap ${e.insns === null ? 'none' : `${e.insns} instructions`}`;
      case 'io': return `host call ${e.op}(${e.args}) = ${e.result}`;
      case 'write': return `write #${e.index} on fd ${e.fd} returned ${e.result}${e.writable ? '' : ' (now unwritable)'}`;
      case 'checkpoint': return `checkpoint state ${e.state} trace ${e.trace} (seq ${e.traceSeq}) output ${e.output}`;
      case 'end': return `end of recording (${e.reason}) state ${e.state} trace ${e.trace} (seq ${e.traceSeq}) output ${e.output}`;
    }
  })();
  return `${what} [${pos}]`;
}

function inputText(i: HostInput): string {
  switch (i.kind) {
    case 'data': {
      const shown = Array.from(i.data.subarray(0, 40), (c) => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
      return `data fd ${i.fd} (${i.data.length} bytes) "${shown}${i.data.length > 40 ? '...' : ''}"`;
    }
    case 'hup': return `hang-up fd ${i.fd}`;
    case 'accept': return `accept fd ${i.fd} conn ${i.conn}`;
    case 'writable': return `fd ${i.fd} ${i.writable ? 'writable' : 'unwritable'}`;
  }
}
