// QObjects as the monitor uses them (qobject/qdict.c, qnum.c, qlist.c): the values QMP parses,
// dispatches and prints. Strings are *byte strings* (each char code 0..255 is one byte of QEMU's
// modified UTF-8), so bytes that are not valid UTF-8 survive until the JSON writer replaces them.
// Invariant: a QDict iterates in QEMU's hash order (tdb_hash % 512 ascending, newest first inside
// a bucket), which is the key order of every QMP message QEMU prints.

import { assert } from '../core/util/index.ts';

/** A JSON number: int64, uint64 (only above INT64_MAX) or double. @qemu qobject/qnum.c QNum */
export type QNum =
  | { t: 'num'; kind: 'i64'; value: bigint }
  | { t: 'num'; kind: 'u64'; value: bigint }
  | { t: 'num'; kind: 'double'; value: number };

/** @qemu qobject/qdict.c QDict — insertion order kept by the Map, print order computed. */
export interface QDict {
  t: 'dict';
  map: Map<string, QObject>;
}

/** null is QNull, strings are byte strings, arrays are QLists. */
export type QObject = null | boolean | string | QNum | QDict | QObject[];

/** @qemu include/qapi/qmp/qdict.h QDICT_BUCKET_MAX */
export const QDICT_BUCKET_MAX = 512;

/**
 * The hash QEMU's QDict uses to pick a bucket (Samba's tdb_hash). `key` is a byte string.
 * @qemu qobject/qdict.c tdb_hash
 */
export function tdbHash(key: string): number {
  let value = Math.imul(0x238f13af, key.length) >>> 0;
  for (let i = 0; i < key.length; i++) {
    value = (value + (key.charCodeAt(i) << ((i * 5) % 24))) >>> 0;
  }
  return (Math.imul(1103515243, value) + 12345) >>> 0;
}

/** The bucket of `key` (0..511). */
export function qdictBucket(key: string): number {
  return tdbHash(key) % QDICT_BUCKET_MAX;
}

export function qdictNew(): QDict {
  return { t: 'dict', map: new Map() };
}

/** Insert or replace; a replaced key keeps its place. @qemu qdict_put_obj */
export function qdictPut(d: QDict, key: string, value: QObject): void {
  d.map.set(key, value);
}

/** @qemu qdict_del */
export function qdictDel(d: QDict, key: string): void {
  d.map.delete(key);
}

/** Entries in QEMU's iteration order (qdict_first / qdict_next). */
export function qdictEntries(d: QDict): [string, QObject][] {
  const list = [...d.map.entries()].map((e, i) => ({ e, i, b: qdictBucket(e[0]) }));
  // Inside a bucket QEMU prepends, so the most recently inserted key comes first.
  list.sort((a, b) => (a.b !== b.b ? a.b - b.b : b.i - a.i));
  return list.map((x) => x.e);
}

/** Build a QDict from pairs inserted in the given order. */
export function qdictFrom(pairs: [string, QObject][]): QDict {
  const d = qdictNew();
  for (const [k, v] of pairs) qdictPut(d, k, v);
  return d;
}

export function qnumInt(v: number | bigint): QNum {
  const b = typeof v === 'bigint' ? v : BigInt(v);
  assert(b >= -(1n << 63n) && b < 1n << 64n, `integer ${b} does not fit 64 bits`);
  return b >= 1n << 63n ? { t: 'num', kind: 'u64', value: b } : { t: 'num', kind: 'i64', value: b };
}

export function qnumDouble(v: number): QNum {
  return { t: 'num', kind: 'double', value: v };
}

export function isQDict(o: QObject): o is QDict {
  return typeof o === 'object' && o !== null && !Array.isArray(o) && o.t === 'dict';
}

export function isQNum(o: QObject): o is QNum {
  return typeof o === 'object' && o !== null && !Array.isArray(o) && o.t === 'num';
}

/** The QAPI type name QEMU's input visitor uses in its type errors. */
export function qobjectTypeName(o: QObject): 'null' | 'boolean' | 'string' | 'number' | 'object' | 'array' {
  if (o === null) return 'null';
  if (typeof o === 'boolean') return 'boolean';
  if (typeof o === 'string') return 'string';
  if (Array.isArray(o)) return 'array';
  return o.t === 'dict' ? 'object' : 'number';
}

/** JavaScript text to a byte string (UTF-8). */
export function utf8ToBytes(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

/** A byte string to a Uint8Array. */
export function bytesToArray(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'latin1'));
}

/** A Uint8Array to a byte string. */
export function arrayToBytes(a: Uint8Array): string {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('latin1');
}

/**
 * Convert plain data raised by the kernel (a QAPI event's data, a command's result) into a
 * QObject. Object keys are inserted in property order (the QAPI schema order when the producer
 * follows it); integral numbers become int64, others doubles; strings are UTF-8 encoded.
 */
export function qobjectFromPlain(v: unknown, depth = 0): QObject {
  assert(depth < 64, 'qobjectFromPlain: data nested deeper than 64 levels');
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return utf8ToBytes(v);
  if (typeof v === 'bigint') return qnumInt(v);
  if (typeof v === 'number') return Number.isInteger(v) ? qnumInt(v) : qnumDouble(v);
  if (Array.isArray(v)) return v.map((x) => qobjectFromPlain(x, depth + 1));
  if (typeof v === 'object') {
    const d = qdictNew();
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x !== undefined) qdictPut(d, utf8ToBytes(k), qobjectFromPlain(x, depth + 1));
    }
    return d;
  }
  throw new TypeError(`qobjectFromPlain: cannot convert a ${typeof v}`);
}
