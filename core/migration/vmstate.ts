// The VMState interpreter (migration/vmstate.c): save a described state object to a QEMUFile
// with its vmdesc JSON, load one from a stream into a staged copy, and commit the staged copy.
// Loading never touches the live object: it fills a fresh plain-data object with what the stream
// brought, so a loader can stage a whole stream and apply it only once every byte has checked
// out (detvm's atomic load). Field existence, element counts, vmdesc compression and naming,
// version checks and subsection rules follow QEMU 7.2.
// Invariant: a save writes exactly what the vmdesc it generates describes (name, type, size).

import { assert } from '../util/index.ts';
import { EINVAL, ENOENT } from './errors.ts';
import {
  type JSONWriter, jsonWriterEndArray, jsonWriterEndObject, jsonWriterInt64, jsonWriterStartArray,
  jsonWriterStartObject, jsonWriterStr,
} from './json-writer.ts';
import {
  type QEMUFileWriter, latin1String, qemuPutBe32, qemuPutBuffer, qemuPutByte, qemuPutCountedString,
  qemuPutZeros,
} from './qemu-file.ts';
import {
  type QEMUFileReader, qemuFileSkip, qemuGetBe32, qemuGetBuffer, qemuGetSkip, qemuPeekBuffer,
  qemuPeekByte,
} from './qemu-file-reader.ts';
import { type VMStateGetOut, vmstateInfoGet, vmstateInfoPut } from './vmstate-info.ts';
import {
  type VMStateDescription, type VMStateField, type VMStateScalar, type VMStateStaged,
  vmstateTypeName,
} from './vmstate-types.ts';

/** Marks a subsection in the stream. */
export const QEMU_VM_SUBSECTION = 0x05;

type Obj = Record<string, unknown>;

/** @qemu vmstate_field_exists */
function fieldExists(field: VMStateField, opaque: unknown, versionId: number): boolean {
  if (field.fieldExists) return field.fieldExists(opaque, versionId);
  return field.versionId <= versionId;
}

/** Element count on save. @qemu vmstate_n_elems */
function nElemsSave(field: VMStateField, opaque: Obj, container: unknown, where: string): number {
  if (!field.isArray) return 1;
  const len = (container as ArrayLike<unknown> | undefined)?.length;
  assert(typeof len === 'number', `${where}: array field over a property that is not an array`);
  if (field.numProp === null) {
    assert(len === field.num,
      `${where}: array has ${len} elements, the description says ${field.num}`);
    return field.num;
  }
  const n = opaque[field.numProp];
  assert(typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= len,
    `${where}: count ${String(n)} in '${field.numProp}' does not fit the ${len}-element array`);
  return n;
}

/** @qemu vmsd_can_compress */
function canCompress(field: VMStateField): boolean {
  if (field.fieldExists) return false;
  if (field.kind === 'struct') {
    const sub = field.vmsd!;
    if (!sub.fields.every(canCompress)) return false;
    if (sub.subsections && sub.subsections.length > 0) return false;
  }
  return true;
}

/** The vmdesc name: QEMU appends "[n]" to a name used by several fields of one description. */
function descName(vmsd: VMStateDescription, field: VMStateField): string {
  let count = 0;
  let index = -1;
  for (const f of vmsd.fields) {
    if (f.name !== field.name) continue;
    if (f === field) index = count;
    count++;
  }
  return count > 1 ? `${field.name}[${index}]` : field.name;
}

/** @qemu vmsd_desc_field_start */
function descFieldStart(
  vmsd: VMStateDescription, w: JSONWriter | null, field: VMStateField, i: number, max: number,
): void {
  if (w === null) return;
  jsonWriterStartObject(w, null);
  jsonWriterStr(w, 'name', descName(vmsd, field));
  if (max > 1) {
    if (canCompress(field)) jsonWriterInt64(w, 'array_len', max);
    else jsonWriterInt64(w, 'index', i);
  }
  jsonWriterStr(w, 'type', vmstateTypeName(field));
  if (field.kind === 'struct') jsonWriterStartObject(w, 'struct');
}

/** @qemu vmsd_desc_field_end */
function descFieldEnd(w: JSONWriter | null, field: VMStateField, size: number): void {
  if (w === null) return;
  if (field.kind === 'struct') jsonWriterEndObject(w);
  jsonWriterInt64(w, 'size', size);
  jsonWriterEndObject(w);
}

/** Whether a (sub)section is to be saved. @qemu vmstate_section_needed */
export function vmstateSectionNeeded(vmsd: VMStateDescription, opaque: unknown): boolean {
  return vmsd.needed === undefined || vmsd.needed(opaque);
}

/**
 * Save `opaque` as `vmsd` at `versionId` (default: the description's), describing it into
 * `vmdesc` when given (inside an object the caller opened). Returns 0, or the negative errno
 * of a failed pre_save hook after pushing QEMU's message onto `errs`.
 * @qemu migration/vmstate.c vmstate_save_state_v
 */
export function vmstateSaveState(
  f: QEMUFileWriter, vmsd: VMStateDescription, opaque: object, vmdesc: JSONWriter | null,
  errs: string[] = [], versionId = vmsd.versionId,
): number {
  const o = opaque as Obj;
  if (vmsd.preSave) {
    const ret = vmsd.preSave(opaque);
    if (ret) {
      errs.push(`pre-save failed: ${vmsd.name}`);
      return ret;
    }
  }
  if (vmdesc) {
    jsonWriterStr(vmdesc, 'vmsd_name', vmsd.name);
    jsonWriterInt64(vmdesc, 'version', versionId);
    jsonWriterStartArray(vmdesc, 'fields');
  }
  for (const field of vmsd.fields) {
    if (!fieldExists(field, opaque, versionId)) continue;
    const where = `${vmsd.name}.${field.name}`;
    const container = field.prop === null ? opaque : o[field.prop];
    assert(container !== undefined, `${where}: state has no property '${field.prop}'`);
    const n = nElemsSave(field, o, container, where);
    let desc = vmdesc;
    for (let i = 0; i < n; i++) {
      descFieldStart(vmsd, desc, field, i, n);
      const old = f.transferred;
      const elem = field.isArray ? (container as ArrayLike<unknown>)[i] : container;
      const ret = putElement(f, field, o, elem, desc, errs, where);
      if (ret) {
        errs.push(`Save of field ${vmsd.name}/${field.name} failed`);
        return ret;
      }
      descFieldEnd(desc, field, f.transferred - old);
      // Compressed arrays are described by their first element only.
      if (desc && canCompress(field)) desc = null;
    }
  }
  if (vmdesc) jsonWriterEndArray(vmdesc);
  return vmstateSubsectionSave(f, vmsd, opaque, vmdesc, errs);
}

function putElement(
  f: QEMUFileWriter, field: VMStateField, opaque: Obj, elem: unknown, desc: JSONWriter | null,
  errs: string[], where: string,
): number {
  switch (field.kind) {
    case 'struct':
      assert(typeof elem === 'object' && elem !== null,
        `${where}: struct element is not an object`);
      return vmstateSaveState(f, field.vmsd!, elem, desc, errs);
    case 'buffer':
      assert(elem instanceof Uint8Array && elem.length === field.size,
        `${where}: buffer must be a Uint8Array of ${field.size} bytes`);
      qemuPutBuffer(f, elem);
      return 0;
    case 'vbuffer': {
      const size = opaque[field.sizeProp!];
      assert(typeof size === 'number' && elem instanceof Uint8Array && size >= 0
        && size <= elem.length,
        `${where}: vbuffer size ${String(size)} does not fit its Uint8Array`);
      qemuPutBuffer(f, elem.subarray(0, size));
      return 0;
    }
    case 'unused':
      qemuPutZeros(f, field.size);
      return 0;
    default:
      vmstateInfoPut(f, field.kind, elem, where);
      return 0;
  }
}

/** @qemu vmstate_subsection_save */
function vmstateSubsectionSave(
  f: QEMUFileWriter, vmsd: VMStateDescription, opaque: object, vmdesc: JSONWriter | null,
  errs: string[],
): number {
  let opened = false;
  for (const sub of vmsd.subsections ?? []) {
    if (!vmstateSectionNeeded(sub, opaque)) continue;
    if (vmdesc) {
      if (!opened) jsonWriterStartArray(vmdesc, 'subsections');
      opened = true;
      jsonWriterStartObject(vmdesc, null);
    }
    qemuPutByte(f, QEMU_VM_SUBSECTION);
    qemuPutCountedString(f, sub.name);
    qemuPutBe32(f, sub.versionId);
    const ret = vmstateSaveState(f, sub, opaque, vmdesc, errs);
    if (ret) return ret;
    if (vmdesc) jsonWriterEndObject(vmdesc);
  }
  if (opened) jsonWriterEndArray(vmdesc!);
  return 0;
}

/**
 * Load `vmsd` at the incoming `versionId` into `staged` (a fresh object that receives only
 * what the stream brings), consulting `live` (not changed) for value representations, the
 * *_equal checks and VARRAY counts not in the stream. Returns 0 or a negative errno, with
 * QEMU's messages reported in QEMU's order.
 * @qemu migration/vmstate.c vmstate_load_state
 */
export function vmstateLoadState(
  f: QEMUFileReader, vmsd: VMStateDescription, staged: VMStateStaged, live: object,
  versionId: number, report: (msg: string) => void,
): number {
  if (versionId > vmsd.versionId) {
    report(`${vmsd.name}: incoming version_id ${versionId} is too new`
      + ` for local version_id ${vmsd.versionId}`);
    return -EINVAL;
  }
  if (versionId < vmsd.minimumVersionId) {
    report(`${vmsd.name}: incoming version_id ${versionId} is too old`
      + ` for local minimum version_id  ${vmsd.minimumVersionId}`);
    return -EINVAL;
  }
  let ret = vmsd.preLoad ? vmsd.preLoad(staged, live) : 0;
  if (ret) return ret;
  const out: VMStateGetOut = { v: undefined };
  for (const field of vmsd.fields) {
    if (!fieldExists(field, live, versionId)) continue;
    const n = nElemsLoad(field, staged, live as Obj, report, vmsd.name);
    ret = n < 0 ? n : 0;
    for (let i = 0; i < n && ret === 0; i++) {
      ret = getElement(f, field, staged, live as Obj, i, n, out, report, vmsd.name);
      if (ret >= 0) ret = f.error;
    }
    if (ret < 0) {
      report(`Failed to load ${vmsd.name}:${field.name}`);
      return ret;
    }
  }
  ret = vmstateSubsectionLoad(f, vmsd, staged, live, report);
  if (ret !== 0) return ret;
  if (vmsd.postLoad) ret = vmsd.postLoad(staged, versionId, live, report);
  return ret;
}

function nElemsLoad(
  field: VMStateField, staged: VMStateStaged, live: Obj,
  report: (m: string) => void, vmsdName: string,
): number {
  if (!field.isArray) return 1;
  if (field.numProp === null) return field.num;
  const n = staged[field.numProp] ?? live[field.numProp];
  const count = typeof n === 'number' ? n
    : typeof n === 'bigint' ? Number(BigInt.asUintN(53, n))
      : 0;
  if (count > field.maxNum) {
    report(`${vmsdName}: ${field.name} has ${count} elements,`
      + ` more than the ${field.maxNum} this machine holds`);
    return -EINVAL;
  }
  return count;
}

function liveElem(live: Obj, field: VMStateField, i: number): unknown {
  const c = field.prop === null ? live : live[field.prop];
  return field.isArray ? (c as ArrayLike<unknown> | undefined)?.[i] : c;
}

function getElement(
  f: QEMUFileReader, field: VMStateField, staged: VMStateStaged, live: Obj, i: number, n: number,
  out: VMStateGetOut, report: (m: string) => void, vmsdName: string,
): number {
  const like = liveElem(live, field, i);
  let value: unknown;
  switch (field.kind) {
    case 'struct': {
      const sub = field.vmsd!;
      if (field.prop === null) return vmstateLoadState(f, sub, staged, live, sub.versionId, report);
      const target: VMStateStaged = {};
      const liveSub = typeof like === 'object' && like !== null ? like : {};
      const ret = vmstateLoadState(f, sub, target, liveSub, sub.versionId, report);
      value = target;
      if (ret < 0) return ret;
      break;
    }
    case 'buffer':
      value = qemuGetBuffer(f, field.size);
      break;
    case 'vbuffer': {
      const s = staged[field.sizeProp!] ?? live[field.sizeProp!];
      const size = typeof s === 'number' ? s : 0;
      if (size > field.maxSize) {
        report(`${vmsdName}: ${field.name} is ${size} bytes,`
          + ` more than the ${field.maxSize} this machine accepts`);
        return -EINVAL;
      }
      value = qemuGetBuffer(f, size);
      break;
    }
    case 'unused':
      qemuGetSkip(f, field.size);
      return 0;
    default: {
      const kind = field.kind as VMStateScalar | 'timer';
      const ret = vmstateInfoGet(f, kind, like, out, report, `${vmsdName}.${field.name}`);

      if (ret < 0) return ret;
      value = out.v;
    }
  }
  stageValue(staged, field, i, n, value);
  return 0;
}

function stageValue(
  staged: VMStateStaged, field: VMStateField, i: number, n: number, value: unknown,
): void {
  const prop = field.prop!;
  if (!field.isArray) {
    staged[prop] = value;
    return;
  }
  if (i === 0 || !Array.isArray(staged[prop])) staged[prop] = new Array<unknown>(n);
  (staged[prop] as unknown[])[i] = value;
}

/** @qemu vmstate_subsection_load */
function vmstateSubsectionLoad(
  f: QEMUFileReader, vmsd: VMStateDescription, staged: VMStateStaged, live: object,
  report: (m: string) => void,
): number {
  // Each pass consumes at least the marker, length, name and version, so the loop ends with
  // the stream; at the end of a final stream the peek reads 0 and stops it.
  while (qemuPeekByte(f, 0) === QEMU_VM_SUBSECTION) {
    const len = qemuPeekByte(f, 1);
    if (len < vmsd.name.length + 1) return 0;
    const raw = qemuPeekBuffer(f, len, 2);
    if (raw.length !== len) return 0;
    const idstr = latin1String(raw);
    if (!idstr.startsWith(vmsd.name)) return 0;
    const sub = (vmsd.subsections ?? []).find((s) => s.name === idstr);
    if (sub === undefined) return -ENOENT;
    qemuFileSkip(f, 2 + len);
    // QEMU reads the be32 version into a uint8_t.
    const versionId = qemuGetBe32(f) & 0xff;
    const ret = vmstateLoadState(f, sub, staged, live, versionId, report);
    if (ret) return ret;
  }
  return 0;
}

function isPlainObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/**
 * Copy a staged load into the live object in place: scalars are assigned, typed arrays and
 * arrays are written element by element (so references others hold stay valid), nested
 * objects are merged recursively, a buffer of a different length is replaced.
 */
export function vmstateCommit(live: object, staged: VMStateStaged): void {
  const dst = live as Obj;
  for (const key of Object.keys(staged)) {
    const v = staged[key];
    const d = dst[key];
    if (v instanceof Uint8Array) {
      if (d instanceof Uint8Array && d.length === v.length) d.set(v);
      else dst[key] = v.slice();
    } else if (Array.isArray(v)) {
      commitArray(dst, key, d, v);
    } else if (isPlainObject(v)) {
      if (isPlainObject(d)) vmstateCommit(d, v);
      else dst[key] = structuredClone(v);
    } else {
      dst[key] = v;
    }
  }
}

function commitArray(dst: Obj, key: string, d: unknown, v: unknown[]): void {
  if (ArrayBuffer.isView(d) && !(d instanceof DataView)) {
    const t = d as unknown as { length: number; [i: number]: unknown };
    assert(t.length >= v.length,
      `commit: '${key}' has ${t.length} elements, the stream ${v.length}`);
    for (let i = 0; i < v.length; i++) t[i] = v[i];
    return;
  }
  if (!Array.isArray(d)) {
    dst[key] = structuredClone(v);
    return;
  }
  d.length = v.length;
  for (let i = 0; i < v.length; i++) {
    const e = v[i];
    if (isPlainObject(e)) {
      if (!isPlainObject(d[i])) d[i] = {};
      vmstateCommit(d[i] as object, e);
    } else if (e instanceof Uint8Array) {
      d[i] = e.slice();
    } else {
      d[i] = e;
    }
  }
}
