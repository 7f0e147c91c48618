// The scalar VMStateInfo codecs (migration/vmstate-types.c and savevm.c's timer info): how one
// element of a bool, int/uint 8-64, *_equal, int32_le or timer field is put and got. Values
// keep the representation of the live property: bigint stays bigint, boolean stays boolean,
// anything else is a number, and a 64-bit number must be a safe integer.
// Invariant: get reads exactly the element's wire size, whatever the outcome.

import { assert } from '../util/index.ts';
import { EINVAL } from './errors.ts';
import {
  type QEMUFileWriter, qemuPutBe16, qemuPutBe32, qemuPutBe64, qemuPutByte,
} from './qemu-file.ts';
import { type QEMUFileReader, qemuGetBe16, qemuGetBe32, qemuGetByte } from './qemu-file-reader.ts';
import type { VMStateScalar } from './vmstate-types.ts';

/** Put one element of a scalar or timer field. `where` names it for assertion messages. */
export function vmstateInfoPut(
  f: QEMUFileWriter, kind: VMStateScalar | 'timer', value: unknown, where: string,
): void {
  if (kind === 'bool') {
    assert(typeof value === 'boolean' || value === 0 || value === 1,
      `${where}: bool field holds ${String(value)}`);
    qemuPutByte(f, value ? 1 : 0);
    return;
  }
  const bits = widthOf(kind);
  if (bits === 64) {
    if (typeof value === 'bigint') {
      qemuPutBe64(f, value);
      return;
    }
    const v = typeof value === 'boolean' ? Number(value) : value;
    assert(typeof v === 'number' && Number.isSafeInteger(v),
      `${where}: 64-bit field holds ${String(value)}, not a safe integer or bigint`);
    if (kind === 'timer') {
      assert(v >= -1, `${where}: timer expiry ${v} (use -1 for a timer that is not armed)`);
    }
    qemuPutBe64(f, v);
    return;
  }
  let v: number;
  if (typeof value === 'bigint') v = Number(BigInt.asUintN(bits, value));
  else if (typeof value === 'boolean') v = Number(value);
  else {
    assert(typeof value === 'number' && Number.isInteger(value),
      `${where}: field holds ${String(value)}, not an integer`);
    v = value;
  }
  assert(v >= -(2 ** (bits - 1)) && v < 2 ** bits, `${where}: ${v} does not fit ${bits} bits`);
  if (bits === 8) qemuPutByte(f, v);
  else if (bits === 16) qemuPutBe16(f, v);
  else qemuPutBe32(f, v);
}

function widthOf(kind: VMStateScalar | 'timer'): 8 | 16 | 32 | 64 {
  switch (kind) {
    case 'bool': case 'int8': case 'uint8': case 'uint8 equal': return 8;
    case 'int16': case 'uint16': case 'uint16 equal': return 16;
    case 'int32': case 'uint32': case 'int32 equal': case 'uint32 equal': case 'int32 le':
      return 32;
    case 'int64': case 'uint64': case 'uint64 equal': case 'timer': return 64;
  }
}

function isSigned(kind: VMStateScalar | 'timer'): boolean {
  return kind.startsWith('int') || kind === 'timer';
}

/** Where a got value goes: `v` receives it when get returns 0. */
export interface VMStateGetOut {
  v: unknown;
}

/** Numeric view of a live value, for the *_equal and int32_le checks. */
function numericOf(like: unknown): bigint {
  if (typeof like === 'bigint') return like;
  if (typeof like === 'boolean') return like ? 1n : 0n;
  if (typeof like === 'number' && Number.isInteger(like)) return BigInt(like);
  return 0n;
}

/**
 * Get one element. `like` is the current value (its representation is kept, and the *_equal
 * types compare against it). Returns 0 with the value in `out.v`, or -EINVAL after reporting
 * QEMU's message. A 64-bit value that a number property cannot hold exactly is an error too.
 */
export function vmstateInfoGet(
  f: QEMUFileReader, kind: VMStateScalar | 'timer', like: unknown, out: VMStateGetOut,
  report: (msg: string) => void, where: string,
): number {
  const bits = widthOf(kind);
  if (kind === 'bool') {
    const b = qemuGetByte(f) !== 0;
    out.v = typeof like === 'number' ? Number(b) : b;
    return 0;
  }
  let big: bigint;
  if (bits === 64) {
    const hi = qemuGetBe32(f);
    const lo = qemuGetBe32(f);
    big = (BigInt(hi) << 32n) | BigInt(lo);
    if (isSigned(kind)) big = BigInt.asIntN(64, big);
  } else {
    const u = bits === 8 ? qemuGetByte(f) : bits === 16 ? qemuGetBe16(f) : qemuGetBe32(f);
    big = BigInt(u);
    if (isSigned(kind)) big = BigInt.asIntN(bits, big);
  }
  switch (kind) {
    case 'int32 equal': case 'uint32 equal': case 'uint8 equal': case 'uint16 equal':
    case 'uint64 equal': {
      const cur = BigInt.asUintN(bits, numericOf(like));
      const got = BigInt.asUintN(bits, big);
      if (cur !== got) {
        report(`${cur.toString(16)} != ${got.toString(16)}`);
        return -EINVAL;
      }
      break;
    }
    case 'int32 le': {
      const cur = BigInt.asIntN(32, numericOf(like));
      if (!(cur >= big && big >= 0n)) {
        report(`Invalid value ${big} expecting positive value <= ${cur}`);
        return -EINVAL;
      }
      break;
    }
    case 'timer':
      // QEMU re-arms with timer_mod_ns, which clamps a negative expiry other than -1 to 0.
      if (big < -1n) big = 0n;
      break;
    default:
      break;
  }
  if (typeof like === 'bigint') {
    out.v = big;
    return 0;
  }
  if (big > BigInt(Number.MAX_SAFE_INTEGER) || big < BigInt(Number.MIN_SAFE_INTEGER)) {
    const hex = BigInt.asUintN(64, big).toString(16);
    report(`${where}: value 0x${hex} is beyond the 53 bits detvm holds in this field`);

    return -EINVAL;
  }
  const n = Number(big);
  out.v = typeof like === 'boolean' ? n !== 0 : n;
  return 0;
}
