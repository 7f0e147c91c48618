// The header of a record/replay log (FORMAT.md): magic, format version, then a JSON object with
// the detvm version, the full configuration and its hash, the guest image's name and hash, the
// seed, the clock mode and the event schema, so a log describes itself and an unknown or
// mismatched log is refused with the reason. Invariant: a header that decodes also validates
// (every field present with the right type), so later code may trust it.

import { type ByteCursor, byteWriterCreate, byteWriterTake, getU16, getU32, putU16, putU32 } from './log-codec.ts';
import { EVENT_SCHEMA, INPUT_SCHEMA, type HashHex } from './log-events.ts';
import { hashCreate, hashHex, hashString, hashValue, hashBytes } from './state-hash.ts';

/** "DETVM-RR": the first eight bytes of every log. */
export const LOG_MAGIC = [0x44, 0x45, 0x54, 0x56, 0x4d, 0x2d, 0x52, 0x52] as const;
/** Bumped whenever an event's encoding or meaning changes. */
export const LOG_FORMAT_VERSION = 1;
const HEADER_JSON_MAX = 16 * 1024 * 1024;

/** What a log says about the run it records. */
export interface ReplayHeader {
  format: number;
  /** detvm's version (package.json) that wrote the log. */
  detvm: string;
  /** 'live': host clocks and sockets; 'virtual': simulated time (library, tests). */
  mode: 'live' | 'virtual';
  /** The machine configuration (MachineConfig without host hooks) as canonical JSON data. */
  config: Record<string, unknown>;
  configHash: HashHex;
  /** The -kernel image: name (path) given, its byte length and hash; null without a kernel. */
  image: { name: string; bytes: number; hash: HashHex } | null;
  seed: number;
  /** Wall-clock second the HOST clock counts from. */
  hostBaseSec: number;
  /** m.sys.maxSliceInsns at start (live mode caps vCPU turns). */
  maxSliceInsns: number | null;
  icountShift: number;
  smp: number;
  traceLevel: number;
  /** The rrfile name as given (info replay prints it). */
  filename: string;
  /** -icount rrsnapshot=NAME, kept for information (detvm logs start at machine creation). */
  rrsnapshot: string | null;
  /** A checkpoint is written after every this many main-loop iterations. */
  checkpointEvery: number;
  /** The event schema (self-description). */
  events: Record<string, { name: string; fields: string[] }>;
  input: string;
}

/** A log was refused: the message says why and what to do. */
export class ReplayRefusedError extends Error {
  override name = 'ReplayRefusedError';
}

/** Hash of a canonical configuration object. */
export function replayConfigHash(config: Record<string, unknown>): HashHex {
  const h = hashCreate();
  hashValue(h, config, 16);
  return hashHex(h);
}

/** Hash of a guest image. */
export function replayImageHash(bytes: Uint8Array): HashHex {
  const h = hashCreate();
  hashString(h, 'image');
  hashBytes(h, bytes);
  return hashHex(h);
}

/** The fields a recorder supplies; the rest is filled in. */
export type ReplayHeaderInit = Omit<ReplayHeader, 'format' | 'configHash' | 'events' | 'input'>;

export function replayHeaderCreate(init: ReplayHeaderInit): ReplayHeader {
  return {
    format: LOG_FORMAT_VERSION, ...init, configHash: replayConfigHash(init.config),
    events: Object.fromEntries(Object.entries(EVENT_SCHEMA).map(([k, v]) => [k, v])), input: INPUT_SCHEMA,
  };
}

/** Magic, version, JSON length and JSON. */
export function replayHeaderEncode(h: ReplayHeader): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(h));
  const w = byteWriterCreate(json.length + 16);
  for (const b of LOG_MAGIC) w.buf[w.len++] = b;
  putU16(w, LOG_FORMAT_VERSION);
  putU32(w, json.length);
  w.buf.set(json, w.len);
  w.len += json.length;
  return byteWriterTake(w);
}

const FIELDS: Array<[keyof ReplayHeader, string]> = [
  ['detvm', 'string'], ['mode', 'string'], ['config', 'object'], ['configHash', 'string'], ['seed', 'number'],
  ['hostBaseSec', 'number'], ['icountShift', 'number'], ['smp', 'number'], ['traceLevel', 'number'],
  ['filename', 'string'], ['checkpointEvery', 'number'], ['events', 'object'],
];

/**
 * Decode the header of `bytes` (`name` is the file, for messages). Returns the header and where
 * the events start.
 * @throws ReplayRefusedError: not a detvm log, another format version, a damaged header.
 */
export function replayHeaderDecode(bytes: Uint8Array, name: string): { header: ReplayHeader; eventsAt: number } {
  if (bytes.length < 14 || LOG_MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new ReplayRefusedError(`${name} is not a detvm record/replay log (it does not start with "DETVM-RR")`);
  }
  const c: ByteCursor = { pos: 8 };
  const version = getU16(bytes, c);
  if (version !== LOG_FORMAT_VERSION) {
    throw new ReplayRefusedError(`${name} uses log format version ${version}; this detvm reads version ${LOG_FORMAT_VERSION} only (replay it with the detvm that recorded it)`);
  }
  const len = getU32(bytes, c);
  if (len > HEADER_JSON_MAX || c.pos + len > bytes.length) {
    throw new ReplayRefusedError(`${name}: the log header is truncated (${len} bytes announced, ${bytes.length - c.pos} present)`);
  }
  let header: ReplayHeader;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(c.pos, c.pos + len))) as ReplayHeader;
  } catch {
    throw new ReplayRefusedError(`${name}: the log header is not valid JSON (the file is damaged)`);
  }
  for (const [k, t] of FIELDS) {
    if (typeof header[k] !== t || header[k] === null) {
      throw new ReplayRefusedError(`${name}: the log header lacks '${k}' (the file is damaged or not from detvm)`);
    }
  }
  if (header.mode !== 'live' && header.mode !== 'virtual') {
    throw new ReplayRefusedError(`${name}: unknown clock mode '${String(header.mode)}' in the log header`);
  }
  if (replayConfigHash(header.config) !== header.configHash) {
    throw new ReplayRefusedError(`${name}: the configuration in the log header does not match its hash (the file was edited or damaged)`);
  }
  return { header, eventsAt: c.pos + len };
}

/** What the replaying side expects; each check is skipped when its field is absent. */
export interface ReplayExpect {
  detvm?: string;
  /** Accept a log written by another detvm version (determinism is then not promised). */
  allowOtherVersion?: boolean;
  config?: Record<string, unknown>;
  imageHash?: HashHex | null;
}

function describeValue(v: unknown): string {
  return v === undefined ? '(unset)' : JSON.stringify(v);
}

/** The fields in which two configurations differ, as "key: log X, now Y". */
export function replayConfigDiff(log: Record<string, unknown>, now: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(log), ...Object.keys(now)])].sort();
  const out: string[] = [];
  for (const k of keys) {
    const a = describeValue(log[k]);
    const b = describeValue(now[k]);
    if (a !== b) out.push(`${k}: log ${a}, now ${b}`);
  }
  return out;
}

/**
 * Check `h` against what the replaying side expects.
 * @throws ReplayRefusedError naming the mismatch.
 */
export function replayHeaderCheck(h: ReplayHeader, name: string, expect: ReplayExpect): void {
  if (expect.detvm !== undefined && h.detvm !== expect.detvm && !expect.allowOtherVersion) {
    throw new ReplayRefusedError(`${name} was recorded by detvm ${h.detvm}; this is detvm ${expect.detvm}, and replays are exact only with the same version (allow another version to try anyway)`);
  }
  if (expect.config !== undefined && replayConfigHash(expect.config) !== h.configHash) {
    const diff = replayConfigDiff(h.config, expect.config);
    throw new ReplayRefusedError(`${name} was recorded with another configuration (${diff.join('; ')})`);
  }
  if (expect.imageHash !== undefined) {
    const logged = h.image?.hash ?? null;
    if (logged !== expect.imageHash) {
      throw new ReplayRefusedError(`${name} was recorded with guest image ${h.image ? `'${h.image.name}' (hash ${logged})` : '(none)'}; the image given now ${expect.imageHash === null ? 'is none' : `has hash ${expect.imageHash}`}`);
    }
  }
}
