// Argument validation of QMP commands, as QEMU's generated marshallers do it with the QObject
// input visitor (qapi/qobject-input-visitor.c, qapi/qapi-visit-core.c): members visited in schema
// order, "Parameter 'x' is missing", "Invalid parameter type for 'x', expected: T", enum values
// ("Parameter 'x' does not accept value 'v'"), then leftovers ("Parameter 'x' is unexpected").

import { type QDict, type QObject, isQDict, isQNum, qdictEntries } from './qobject.ts';

/** A member type: builtin, enum (allowed values) or list of one of those. */
export type QapiType =
  | { kind: 'str' } | { kind: 'int' } | { kind: 'bool' } | { kind: 'any' }
  | { kind: 'enum'; values: readonly string[] }
  | { kind: 'list'; of: QapiType };

/** One member of a command's arguments. */
export interface QapiMember {
  name: string;
  type: QapiType;
  optional?: boolean;
}

/** Validated arguments: QObjects keyed by member name (absent optionals are missing). */
export type QapiArgs = Map<string, QObject>;

export const T_STR: QapiType = { kind: 'str' };
export const T_INT: QapiType = { kind: 'int' };
export const T_BOOL: QapiType = { kind: 'bool' };

function invalidType(name: string, expected: string): string {
  return `Invalid parameter type for '${name}', expected: ${expected}`;
}

/** Visit `v` as `type`; returns an error text or null. `name` is the full name, `enumName` what enum errors say. */
function visitValue(v: QObject, type: QapiType, name: string, enumName: string): string | null {
  switch (type.kind) {
    case 'any':
      return null;
    case 'str':
      return typeof v === 'string' ? null : invalidType(name, 'string');
    case 'bool':
      return typeof v === 'boolean' ? null : invalidType(name, 'boolean');
    case 'int':
      // qnum_get_try_int: int64 only (a double or a uint64 above INT64_MAX does not fit).
      return isQNum(v) && v.kind === 'i64' ? null : invalidType(name, 'integer');
    case 'enum':
      if (typeof v !== 'string') return invalidType(name, 'string');
      return type.values.includes(v) ? null : `Parameter '${enumName}' does not accept value '${v}'`;
    case 'list': {
      if (!Array.isArray(v)) return invalidType(name, 'array');
      for (let i = 0; i < v.length; i++) {
        // List elements have no name: enum errors say 'null', type errors 'name[i]'.
        const err = visitValue(v[i]!, type.of, `${name}[${i}]`, 'null');
        if (err) return err;
      }
      return null;
    }
  }
}

/**
 * Validate `args` against `members`. Returns the members found, or QEMU's error text.
 * @qemu qapi/qobject-input-visitor.c (strict mode, as qmp_marshal_* use it)
 */
export function qapiVisitArgs(args: QDict, members: readonly QapiMember[]): { ok: true; args: QapiArgs } | { ok: false; desc: string } {
  const seen = new Set<string>();
  const out: QapiArgs = new Map();
  for (const m of members) {
    const v = args.map.get(m.name);
    if (v === undefined) {
      if (m.optional) continue;
      return { ok: false, desc: `Parameter '${m.name}' is missing` };
    }
    seen.add(m.name);
    const err = visitValue(v, m.type, m.name, m.name);
    if (err) return { ok: false, desc: err };
    out.set(m.name, v);
  }
  // QEMU reports the first key left in a GHashTable; detvm takes the first in QDict order.
  for (const [k] of qdictEntries(args)) {
    if (!seen.has(k)) return { ok: false, desc: `Parameter '${k}' is unexpected` };
  }
  return { ok: true, args: out };
}

/** The string value of a validated member (or undefined when an optional member is absent). */
export function argStr(a: QapiArgs, name: string): string | undefined {
  const v = a.get(name);
  return typeof v === 'string' ? v : undefined;
}

/** The int64 value of a validated member. */
export function argInt(a: QapiArgs, name: string): bigint | undefined {
  const v = a.get(name);
  return v !== undefined && isQNum(v) && v.kind === 'i64' ? v.value : undefined;
}

/** The list value of a validated member. */
export function argList(a: QapiArgs, name: string): QObject[] | undefined {
  const v = a.get(name);
  return Array.isArray(v) ? v : undefined;
}

export { isQDict };
