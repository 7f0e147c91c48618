// VMState descriptions as data (include/migration/vmstate.h): a VMStateDescription names a
// state, its version window, its fields and its subsections; each field names its QEMU field
// (what the vmdesc shows) and the property of the plain-data state object that holds the value.
// The helpers below are QEMU's VMSTATE_* macros. Values keep the representation of the state
// object: a 64-bit field over a bigint property loads as bigint, over a number as a number
// (which must then be a safe integer); a numeric field over a boolean property loads as boolean.

/** Scalar field types, named as QEMU's VMStateInfo (and as the vmdesc "type"). */
export type VMStateScalar =
  | 'bool' | 'int8' | 'int16' | 'int32' | 'int64' | 'uint8' | 'uint16' | 'uint32' | 'uint64'
  | 'int32 equal' | 'uint8 equal' | 'uint16 equal' | 'uint32 equal' | 'uint64 equal' | 'int32 le';

/**
 * What a field holds: a scalar type, `buffer` (VMSTATE_BUFFER, a Uint8Array of fixed size),
 * `vbuffer` (VMSTATE_VBUFFER_ALLOC_UINT32: size from another property), `unused`
 * (VMSTATE_UNUSED: zeros, skipped on load), `timer` (VMSTATE_TIMER: a number, the expiry in ns
 * or -1 when not armed) or `struct` (VMSTATE_STRUCT: a nested description).
 */
export type VMStateKind = VMStateScalar | 'buffer' | 'vbuffer' | 'unused' | 'timer' | 'struct';

/** The state an object under load is staged in: loaded properties only, plain data. */
export type VMStateStaged = Record<string, unknown>;

/** @qemu VMStateField */
export interface VMStateField {
  /** QEMU's field name, as the vmdesc shows it ("cpu_ticks_offset", "env.gpr"). */
  name: string;
  kind: VMStateKind;
  /**
   * Property of the state object. For a struct, null means the nested description reads the
   * same object (a flat TS state described with QEMU's nesting); for `unused`, always null.
   */
  prop: string | null;
  /** The field exists from this version on (VMSTATE_*_V); 0: always. */
  versionId: number;
  /** If set, the only test of existence (field_exists). */
  fieldExists: ((opaque: any, versionId: number) => boolean) | null;
  /** Array (VMS_ARRAY / VMS_VARRAY_*): the value is a list of elements. */
  isArray: boolean;
  /** Element count of a fixed array; 1 otherwise. */
  num: number;
  /** VARRAY: the property holding the element count. */
  numProp: string | null;
  /** VARRAY: the largest count a stream may bring (bounds what a load allocates). */
  maxNum: number;
  /** Bytes of a `buffer` or `unused` field. */
  size: number;
  /** `vbuffer`: the property holding the size, and the largest size a stream may bring. */
  sizeProp: string | null;
  maxSize: number;
  /** `struct`: the nested description. */
  vmsd: VMStateDescription | null;
}

/**
 * @qemu VMStateDescription. Hooks return 0 or a negative errno. `postLoad` sees the staged
 * copy (what the stream brought, which it may complete with derived values) and the live
 * object read-only; the staged copy reaches the live object only when the whole stream has
 * loaded, so a hook must not touch anything else. `report` is error_report.
 */
export interface VMStateDescription<S = any> {
  name: string;
  versionId: number;
  minimumVersionId: number;
  /** MigrationPriority: higher saves first (MIG_PRI_DEFAULT = 0). */
  priority?: number;
  /** The device cannot be migrated: savevm, migrate and loadvm refuse while it is registered. */
  unmigratable?: boolean;
  fields: VMStateField[];
  subsections?: VMStateDescription<S>[];
  /** Saved only when this returns true (subsections, and whole sections). */
  needed?: (opaque: S) => boolean;
  preSave?: (opaque: S) => number;
  preLoad?: (staged: VMStateStaged, live: S) => number;
  postLoad?: (
    staged: VMStateStaged, versionId: number, live: S, report: (msg: string) => void,
  ) => number;
}

export interface FieldOpts {
  versionId?: number;
  fieldExists?: (opaque: any, versionId: number) => boolean;
}

function field(
  name: string, kind: VMStateKind, prop: string | null, o: FieldOpts = {},
): VMStateField {
  return {
    name, kind, prop, versionId: o.versionId ?? 0, fieldExists: o.fieldExists ?? null,
    isArray: false, num: 1, numProp: null, maxNum: 0, size: 0, sizeProp: null, maxSize: 0,
    vmsd: null,
  };
}

/** A scalar field: VMSTATE_BOOL, VMSTATE_UINT32, VMSTATE_INT64_V, VMSTATE_UINT32_EQUAL... */
export function vmstateScalar(
  kind: VMStateScalar, name: string, prop: string, o: FieldOpts = {},
): VMStateField {
  return field(name, kind, prop, o);
}

/** A scalar field constructor, one per VMSTATE_* scalar macro. */
export type VMStateScalarCtor = (name: string, prop: string, o?: FieldOpts) => VMStateField;

function scalar(kind: VMStateScalar): VMStateScalarCtor {
  return (name, prop, o) => vmstateScalar(kind, name, prop, o);
}

export const vmstateBool = scalar('bool');
export const vmstateUint8 = scalar('uint8');
export const vmstateUint16 = scalar('uint16');
export const vmstateUint32 = scalar('uint32');
export const vmstateUint64 = scalar('uint64');
export const vmstateInt8 = scalar('int8');
export const vmstateInt16 = scalar('int16');
export const vmstateInt32 = scalar('int32');
export const vmstateInt64 = scalar('int64');

/**
 * A fixed array of scalars: VMSTATE_UINT32_ARRAY(name, num) etc. The property is an array or typed
 * array.
 */
export function vmstateArray(
  kind: VMStateScalar | 'timer', name: string, prop: string, num: number, o: FieldOpts = {},
): VMStateField {
  return { ...field(name, kind, prop, o), isArray: true, num };
}

/**
 * A variable array: element count in `numProp`, at most `maxNum` on load
 * (VMSTATE_VARRAY_UINT32...).
 */
export function vmstateVarray(
  kind: VMStateScalar, name: string, prop: string, numProp: string, maxNum: number,
  o: FieldOpts = {},
): VMStateField {
  return { ...field(name, kind, prop, o), isArray: true, numProp, maxNum };
}

/** VMSTATE_BUFFER: a Uint8Array of exactly `size` bytes. */
export function vmstateBuffer(
  name: string, prop: string, size: number, o: FieldOpts = {},
): VMStateField {
  return { ...field(name, 'buffer', prop, o), size };
}

/** VMSTATE_VBUFFER_ALLOC_UINT32: a Uint8Array whose length is in `sizeProp`, at most `maxSize`. */
export function vmstateVbuffer(
  name: string, prop: string, sizeProp: string, maxSize: number, o: FieldOpts = {},
): VMStateField {
  return { ...field(name, 'vbuffer', prop, o), sizeProp, maxSize };
}

/** VMSTATE_UNUSED(size) (VMSTATE_UNUSED_V with a version): zeros on save, skipped on load. */
export function vmstateUnused(size: number, o: FieldOpts = {}): VMStateField {
  return { ...field('unused', 'unused', null, o), size };
}

/** VMSTATE_TIMER(_PTR): the property is the expiry in ns, or -1 when the timer is not armed. */
export function vmstateTimer(name: string, prop: string, o: FieldOpts = {}): VMStateField {
  return field(name, 'timer', prop, o);
}

/** VMSTATE_STRUCT: a nested description over `prop` (or, with null, over the same object). */
export function vmstateStruct(
  name: string, prop: string | null, vmsd: VMStateDescription, o: FieldOpts = {},
): VMStateField {
  return { ...field(name, 'struct', prop, o), vmsd };
}

/** VMSTATE_STRUCT_ARRAY: `num` nested objects in the array property `prop`. */
export function vmstateStructArray(
  name: string, prop: string, num: number, vmsd: VMStateDescription, o: FieldOpts = {},
): VMStateField {
  return { ...field(name, 'struct', prop, o), vmsd, isArray: true, num };
}

/** Wire size in bytes of one element of a scalar or timer field. */
export function vmstateScalarSize(kind: VMStateScalar | 'timer'): number {
  switch (kind) {
    case 'bool': case 'int8': case 'uint8': case 'uint8 equal': return 1;
    case 'int16': case 'uint16': case 'uint16 equal': return 2;
    case 'int32': case 'uint32': case 'int32 equal': case 'uint32 equal': case 'int32 le': return 4;
    case 'int64': case 'uint64': case 'uint64 equal': case 'timer': return 8;
  }
}

/** The vmdesc "type" of a field. @qemu vmfield_get_type_name */
export function vmstateTypeName(f: VMStateField): string {
  switch (f.kind) {
    case 'struct': return 'struct';
    case 'buffer': case 'vbuffer': return 'buffer';
    case 'unused': return 'unused_buffer';
    default: return f.kind;
  }
}
