// QEMU's QemuOpts (util/qemu-option.c, 7.2): "key=value,key2=value2" strings where ",," is a
// literal comma, an implied first key, short-form booleans ("server", "nowait": deprecated,
// with QEMU's warning when parsed from the command line), typed values checked at parse time,
// and per-list IDs ("Duplicate ID 'x' for chardev"). Parsing never throws on bad input: errors
// come back as values with QEMU's texts.

import type { ChrReport } from '../core/char/index.ts';

export type QemuOptType = 'string' | 'bool' | 'number' | 'size';

export interface QemuOptDesc {
  name: string;
  type: QemuOptType;
  /** Default used by qemu_opt_get* when the option is absent. */
  defValueStr?: string;
}

/** @qemu include/qemu/option_int.h QemuOptsList */
export interface QemuOptsList {
  name: string;
  impliedOptName: string | null;
  mergeLists: boolean;
  desc: QemuOptDesc[];
  /** Every QemuOpts created in this list, in creation order. */
  head: QemuOpts[];
}

export interface QemuOpt {
  name: string;
  str: string;
  /** The parsed value: boolean for bool, number for number/size, null for string. */
  value: boolean | number | null;
}

/** @qemu QemuOpts */
export interface QemuOpts {
  id: string | null;
  list: QemuOptsList;
  opts: QemuOpt[];
}

export type OptsResult<T> =
  | { ok: true; value: T; warnings: ChrReport[] }
  | { ok: false; error: string; help?: boolean };

/** @qemu QERR_INVALID_PARAMETER_VALUE */
export function qerrInvalidParameterValue(name: string, expected: string): string {
  return `Parameter '${name}' expects ${expected}`;
}

/** @qemu include/qemu/help_option.h is_help_option */
export function isHelpOption(s: string): boolean {
  return s === '?' || s === 'help';
}

/** @qemu util/id.c id_wellformed */
export function idWellformed(id: string): boolean {
  return /^[A-Za-z][A-Za-z0-9._-]*$/.test(id);
}

/** Read a value up to an unescaped ',' (",," is a literal comma). Returns [value, end index]. */
export function getOptValue(p: string, pos: number): [string, number] {
  let out = '';
  let i = pos;
  while (i < p.length) {
    const c = p[i]!;
    if (c === ',') {
      if (p[i + 1] !== ',') break;
      i++;
    }
    out += p[i]!;
    i++;
  }
  return [out, i];
}

interface NameValue {
  name: string;
  value: string;
  next: number;
  isHelp: boolean;
}

/** @qemu util/qemu-option.c get_opt_name_value */
function getOptNameValue(
  p: string, pos: number, firstname: string | null, warnOnFlag: boolean, warnings: ChrReport[],
): NameValue {
  let len = 0;
  while (pos + len < p.length && p[pos + len] !== '=' && p[pos + len] !== ',') len++;
  let name: string;
  let value: string;
  let next: number;
  let isHelp = false;
  if (p[pos + len] !== '=') {
    if (firstname !== null) {
      name = firstname;
      [value, next] = getOptValue(p, pos);
    } else {
      name = p.slice(pos, pos + len);
      next = pos + len;
      let prefix = '';
      if (name.startsWith('no')) {
        name = name.slice(2);
        value = 'off';
        prefix = 'no';
      } else {
        value = 'on';
        isHelp = isHelpOption(name);
      }
      if (!isHelp && warnOnFlag) {
        const hint = name === 'delay'
          ? `Please use nodelay=${prefix ? 'on' : 'off'} instead\n`
          : `Please use ${name}=${value} instead\n`;
        const msg = `short-form boolean option '${prefix}${name}' deprecated`;
        warnings.push({ level: 'warning', msg, hint });
      }
    }
  } else {
    name = p.slice(pos, pos + len);
    [value, next] = getOptValue(p, pos + len + 1);
  }
  if (p[next] === ',') next++;
  return { name, value, next, isHelp };
}

/** @qemu util/qapi-util.c qapi_bool_parse */
export function qapiBoolParse(name: string, value: string): boolean | string {
  if (value === 'on' || value === 'yes' || value === 'true' || value === 'y') return true;
  if (value === 'off' || value === 'no' || value === 'false' || value === 'n') return false;
  return qerrInvalidParameterValue(name, "'on' or 'off'");
}

/** @qemu util/qemu-option.c parse_option_number (qemu_strtou64 with base 0) */
export function parseOptionNumber(name: string, value: string): number | string {
  const m = /^\s*\+?(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(value);
  if (!m) return qerrInvalidParameterValue(name, 'a number');
  const s = m[1]!;
  let big: bigint;
  if (/^0[xX]/.test(s)) big = BigInt(s);
  else if (s.length > 1 && s[0] === '0') big = BigInt(`0o${s.slice(1)}`);
  else big = BigInt(s);
  if (big >= 1n << 64n) return `Value '${value}' is too large for parameter '${name}'`;
  return Number(big);
}

const SIZE_SUFFIX: Readonly<Record<string, number>> = {
  B: 0, K: 10, M: 20, G: 30, T: 40, P: 50, E: 60,
};

/** @qemu util/qemu-option.c parse_option_size (qemu_strtosz: suffixes B K M G T P E) */
export function parseOptionSize(name: string, value: string): number | string {
  const m = /^\s*([0-9]+)(\.[0-9]*)?([bBkKmMgGtTpPeE])?$/.exec(value);
  const bad = (): string => qerrInvalidParameterValue(name, 'a non-negative number below 2^64');
  if (!m) return bad();
  const shift = m[3] ? SIZE_SUFFIX[m[3].toUpperCase()]! : 0;
  if (m[2] && shift === 0) return bad(); // a fraction needs a unit larger than bytes
  const whole = BigInt(m[1]!) << BigInt(shift);
  const frac = m[2] ? Math.floor(Number(`0${m[2]}`) * 2 ** shift) : 0;
  const total = whole + BigInt(frac);
  if (total >= 1n << 64n) return `Value '${value}' is out of range for parameter '${name}'`;
  return Number(total);
}

function findDesc(list: QemuOptsList, name: string): QemuOptDesc | null {
  return list.desc.find((d) => d.name === name) ?? null;
}

/** Parse and type-check an option. @qemu util/qemu-option.c opt_validate */
function optValidate(list: QemuOptsList, name: string, str: string): QemuOpt | string {
  const desc = findDesc(list, name);
  if (!desc && list.desc.length > 0) return `Invalid parameter '${name}'`;
  if (!desc || desc.type === 'string') return { name, str, value: null };
  const v = desc.type === 'bool' ? qapiBoolParse(name, str)
    : desc.type === 'number' ? parseOptionNumber(name, str) : parseOptionSize(name, str);
  if (typeof v === 'string') return v;
  return { name, str, value: v };
}

/** @qemu util/qemu-option.c qemu_opts_find */
export function qemuOptsFind(list: QemuOptsList, id: string | null): QemuOpts | null {
  return list.head.find((o) => o.id === id) ?? null;
}

/** @qemu util/qemu-option.c qemu_opts_create */
export function qemuOptsCreate(
  list: QemuOptsList, id: string | null, failIfExists: boolean,
): { ok: true; opts: QemuOpts } | { ok: false; error: string } {
  if (list.mergeLists) {
    if (id !== null) return { ok: false, error: "Invalid parameter 'id'" };
    const found = qemuOptsFind(list, null);
    if (found) return { ok: true, opts: found };
  } else if (id !== null) {
    if (!idWellformed(id)) {
      return { ok: false, error: qerrInvalidParameterValue('id', 'an identifier') };
    }
    if (failIfExists && qemuOptsFind(list, id)) {
      return { ok: false, error: `Duplicate ID '${id}' for ${list.name}` };
    }
  }
  const opts: QemuOpts = { id, list, opts: [] };
  list.head.push(opts);
  return { ok: true, opts };
}

/** Drop `opts` from its list. @qemu qemu_opts_del */
export function qemuOptsDel(opts: QemuOpts): void {
  const i = opts.list.head.indexOf(opts);
  if (i >= 0) opts.list.head.splice(i, 1);
}

function optsDoParse(
  opts: QemuOpts, params: string, firstname: string | null, warnOnFlag: boolean,
  warnings: ChrReport[],
): string | 'help' | null {
  let first = firstname;
  for (let pos = 0, n = 0; pos < params.length; n++) {
    if (n > params.length) return `option string '${params}' could not be parsed`;
    const nv = getOptNameValue(params, pos, first, warnOnFlag, warnings);
    pos = nv.next;
    first = null;
    if (nv.isHelp) return 'help';
    if (nv.name === 'id') continue;
    const opt = optValidate(opts.list, nv.name, nv.value);
    if (typeof opt === 'string') return opt;
    opts.opts.push(opt);
  }
  return null;
}

/**
 * Add options from `params` to existing `opts` (no short-form warnings in 7.2). @qemu
 * qemu_opts_do_parse
 */
export function qemuOptsDoParse(
  opts: QemuOpts, params: string, firstname: string | null,
): string | null {
  const r = optsDoParse(opts, params, firstname, false, []);
  return r === 'help' ? "Invalid parameter 'help'" : r;
}

/** @qemu util/qemu-option.c opts_parse_id */
function optsParseId(params: string): string | null {
  for (let pos = 0; pos < params.length;) {
    const nv = getOptNameValue(params, pos, null, false, []);
    if (nv.name === 'id') return nv.value;
    if (nv.next <= pos) break;
    pos = nv.next;
  }
  return null;
}

/**
 * Parse `params` into a new QemuOpts of `list` (the command-line form: short-form booleans are
 * accepted with QEMU's deprecation warning). With `permitAbbrev` the first value may omit its
 * key (list.impliedOptName, e.g. "socket" for backend=socket). A "help" option yields
 * `{ ok: false, help: true }`. @qemu util/qemu-option.c qemu_opts_parse_noisily
 */
export function qemuOptsParseNoisily(
  list: QemuOptsList, params: string, permitAbbrev: boolean,
): OptsResult<QemuOpts> {
  const id = optsParseId(params);
  const created = qemuOptsCreate(list, id, !list.mergeLists);
  if (!created.ok) return { ok: false, error: created.error };
  const warnings: ChrReport[] = [];
  const firstname = permitAbbrev ? list.impliedOptName : null;
  const err = optsDoParse(created.opts, params, firstname, true, warnings);
  if (err !== null) {
    qemuOptsDel(created.opts);
    return err === 'help' ? { ok: false, error: '', help: true } : { ok: false, error: err };
  }
  return { ok: true, value: created.opts, warnings };
}

/** Set one option, validated. @qemu util/qemu-option.c qemu_opt_set */
export function qemuOptSet(opts: QemuOpts, name: string, value: string): string | null {
  const opt = optValidate(opts.list, name, value);
  if (typeof opt === 'string') return opt;
  opts.opts.push(opt);
  return null;
}

/** The last setting of `name`, or null. @qemu qemu_opt_find */
export function qemuOptFind(opts: QemuOpts, name: string): QemuOpt | null {
  for (let i = opts.opts.length - 1; i >= 0; i--) {
    if (opts.opts[i]!.name === name) return opts.opts[i]!;
  }
  return null;
}

/** The string value of `name` (or its default), or null. @qemu qemu_opt_get */
export function qemuOptGet(opts: QemuOpts, name: string): string | null {
  const opt = qemuOptFind(opts, name);
  if (opt) return opt.str;
  return findDesc(opts.list, name)?.defValueStr ?? null;
}

/** @qemu qemu_opt_get_bool */
export function qemuOptGetBool(opts: QemuOpts, name: string, defval: boolean): boolean {
  const opt = qemuOptFind(opts, name);
  if (opt) return opt.value === true;
  const def = findDesc(opts.list, name)?.defValueStr;
  if (def !== undefined) return qapiBoolParse(name, def) === true;
  return defval;
}

/** @qemu qemu_opt_get_number / qemu_opt_get_size */
export function qemuOptGetNumber(opts: QemuOpts, name: string, defval: number): number {
  const opt = qemuOptFind(opts, name);
  if (opt && typeof opt.value === 'number') return opt.value;
  return defval;
}
