// HMP argument parsing (monitor/hmp.c get_str, parse_cmdline, monitor_parse_arguments): turns the
// text after a command name into typed arguments following the command's args_type, printing
// QEMU's message for the first problem. Types: F B s S O / i l M o T b and -X flags.
// Invariant: parsing never reads past the line; every loop consumes at least one byte.

import type { Monitor, MonitorSet } from './monitor.ts';
import { monitorPrintf } from './monitor.ts';
import type { HmpArgs, HmpCommand } from './hmp-commands.ts';
import { getExpr, isSpaceCode } from './hmp-expr.ts';

/** get_str's buffer is 1024 bytes. */
const STR_MAX = 1023;
/** @qemu monitor/hmp.c MAX_ARGS */
export const MAX_ARGS = 16;

function isSpaceAt(s: string, p: number): boolean {
  return p < s.length && isSpaceCode(s.charCodeAt(p));
}

function skipSpaces(s: string, p: number): number {
  while (isSpaceAt(s, p)) p++;
  return p;
}

/**
 * Read a word or a double-quoted string with \n \r \\ \' \" escapes. Errors in quotes go to
 * QEMU's stdout (`printf`), as in QEMU. @qemu monitor/hmp.c get_str
 */
export function getStr(mons: MonitorSet, s: string, pos: number): { value: string; end: number } | { error: true; end: number } {
  let p = skipSpaces(s, pos);
  if (p >= s.length) return { error: true, end: p };
  let q = '';
  if (s[p] === '"') {
    p++;
    while (p < s.length && s[p] !== '"') {
      let c = s[p]!;
      if (c === '\\') {
        p++;
        c = s[p++] ?? '\0';
        if (c === 'n') c = '\n';
        else if (c === 'r') c = '\r';
        else if (c !== '\\' && c !== "'" && c !== '"') {
          mons.machine.hostStdout(`unsupported escape code: '\\${c === '\0' ? '' : c}'\n`);
          return { error: true, end: p };
        }
        if (q.length < STR_MAX) q += c;
      } else {
        if (q.length < STR_MAX) q += c;
        p++;
      }
    }
    if (s[p] !== '"') {
      mons.machine.hostStdout('unterminated string\n');
      return { error: true, end: p };
    }
    p++;
  } else {
    while (p < s.length && !isSpaceAt(s, p)) {
      if (q.length < STR_MAX) q += s[p];
      p++;
    }
  }
  return { value: q, end: p };
}

/** Split a line into at most 16 words with get_str; null on failure. @qemu parse_cmdline */
export function parseCmdline(mons: MonitorSet, cmdline: string): string[] | null {
  const args: string[] = [];
  let p = 0;
  for (;;) {
    p = skipSpaces(cmdline, p);
    if (p >= cmdline.length) break;
    if (args.length >= MAX_ARGS) return null;
    const r = getStr(mons, cmdline, p);
    if ('error' in r) return null;
    args.push(r.value);
    p = r.end;
  }
  return args;
}

/** C strtod prefix at `p`: the value and end, or null when no number starts there. */
function strtod(s: string, p: number): { value: number; end: number } | null {
  const m = /^[ \t\n\v\f\r]*[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)/i.exec(s.slice(p));
  if (!m) return null;
  const t = m[0].trim().toLowerCase();
  const sign = t.startsWith('-') ? -1 : 1;
  const body = t.replace(/^[+-]/, '');
  const value = body.startsWith('inf') ? sign * Infinity : body === 'nan' ? NaN : Number(t);
  return { value, end: p + m[0].length };
}

/**
 * qemu_strtosz_MiB: a size with an optional B/K/M/G/T/P/E suffix (default MiB). Hex integers
 * are accepted without a fraction. Returns null on error ("invalid size").
 */
export function strtoszMiB(s: string, p: number): { value: bigint; end: number } | null {
  const m = /^\s*(0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?|\.\d+)([bBkKmMgGtTpPeE]?)/.exec(s.slice(p));
  if (!m) return null;
  const num = m[1]!;
  const unitIdx = m[2] ? 'bkmgtpe'.indexOf(m[2].toLowerCase()) : 2;
  const mul = 1n << BigInt(10 * unitIdx);
  let value: bigint;
  if (/^0[xX]/.test(num)) {
    value = BigInt(num) * mul;
  } else {
    const [ip, fp = ''] = num.split('.');
    const denom = 10n ** BigInt(fp.length);
    value = (BigInt(ip || '0') * denom + BigInt(fp || '0')) * mul / denom;
    if (fp !== '' && BigInt(fp) !== 0n && unitIdx === 0) return null; // fractional bytes
  }
  if (value > 0x7fffffffffffffffn) return null;
  return { value, end: p + m[0].length };
}

/** One item of args_type: key, type char, modifier ('?', '.', 's' or flag letter). */
interface ArgItem {
  key: string;
  type: string;
  rest: string;
}

/** @qemu monitor/hmp.c key_get_info */
function keyGetInfo(typestr: string): { key: string; rest: string } | null {
  const t = typestr.startsWith(',') ? typestr.slice(1) : typestr;
  const colon = t.indexOf(':');
  if (colon < 0) return null;
  return { key: t.slice(0, colon), rest: t.slice(colon + 1) };
}

type Step = { ok: true; p: number; typestr: string } | { ok: false };

function parseOne(mons: MonitorSet, mon: Monitor, cmd: HmpCommand, s: string, p: number, it: ArgItem, args: HmpArgs): Step {
  const c = it.type;
  let typestr = it.rest;
  const say = (msg: string): Step => {
    monitorPrintf(mons, mon, msg + '\n');
    return { ok: false };
  };
  switch (c) {
    case 'F': case 'B': case 's': {
      p = skipSpaces(s, p);
      if (typestr[0] === '?') {
        typestr = typestr.slice(1);
        if (p >= s.length) return { ok: true, p, typestr };
      }
      const r = getStr(mons, s, p);
      if ('error' in r) {
        const what = c === 'F' ? 'filename' : c === 'B' ? 'block device name' : 'string';
        return say(`${cmd.name}: ${what} expected`);
      }
      args.set(it.key, r.value);
      return { ok: true, p: r.end, typestr };
    }
    case '/': return parseFormat(mons, mon, s, p, typestr, args);
    case 'i': case 'l': case 'M': {
      p = skipSpaces(s, p);
      if (typestr[0] === '?' || typestr[0] === '.') {
        if (typestr[0] === '?') {
          if (p >= s.length) return { ok: true, p, typestr: typestr.slice(1) };
        } else if (s[p] === '.') {
          p = skipSpaces(s, p + 1);
        } else {
          return { ok: true, p, typestr: typestr.slice(1) };
        }
        typestr = typestr.slice(1);
      }
      const r = getExpr(mons, mon, s, p);
      if (r === null) return { ok: false };
      let val = r.value;
      if (c === 'i' && ((val >> 32n) & 0xffffffffn) !== 0n) {
        return say(`'${cmd.name}' has failed: integer is for 32-bit values`);
      } else if (c === 'M') {
        if (val < 0n) return say('enter a positive value');
        val = BigInt.asIntN(64, val * 1048576n);
      }
      args.set(it.key, val);
      return { ok: true, p: r.end, typestr };
    }
    case 'o': {
      p = skipSpaces(s, p);
      if (typestr[0] === '?') {
        typestr = typestr.slice(1);
        if (p >= s.length) return { ok: true, p, typestr };
      }
      const r = strtoszMiB(s, p);
      if (r === null) return say('invalid size');
      args.set(it.key, r.value);
      return { ok: true, p: r.end, typestr };
    }
    case 'T': {
      p = skipSpaces(s, p);
      if (typestr[0] === '?') {
        typestr = typestr.slice(1);
        if (p >= s.length) return { ok: true, p, typestr };
      }
      const r = strtod(s, p);
      if (r === null) return say('Number expected');
      if (!Number.isFinite(r.value)) return say('Bad number');
      let val = r.value;
      p = r.end;
      if (p + 1 < s.length && s[p + 1] === 's') {
        const div = s[p] === 'm' ? 1e3 : s[p] === 'u' ? 1e6 : s[p] === 'n' ? 1e9 : 0;
        if (div) {
          val /= div;
          p += 2;
        }
      }
      if (p < s.length && !isSpaceAt(s, p)) return say('Unknown unit suffix');
      args.set(it.key, val);
      return { ok: true, p, typestr };
    }
    case 'b': {
      p = skipSpaces(s, p);
      const beg = p;
      while (p < s.length && s.charCodeAt(p) > 0x20 && s.charCodeAt(p) < 0x7f) p++;
      const w = s.slice(beg, p);
      if (w === 'on') args.set(it.key, true);
      else if (w === 'off') args.set(it.key, false);
      else return say("Expected 'on' or 'off'");
      return { ok: true, p, typestr };
    }
    case '-': return parseFlag(mons, mon, cmd, s, p, it, args);
    case 'S': {
      p = skipSpaces(s, p);
      if (typestr[0] === '?') {
        typestr = typestr.slice(1);
        if (p >= s.length) return { ok: true, p, typestr };
      }
      if (p >= s.length) return say(`${cmd.name}: string expected`);
      args.set(it.key, s.slice(p));
      return { ok: true, p: s.length, typestr };
    }
    default:
      // 'O' (QemuOpts lists) is not supported by detvm: QEMU reports it the same way when the
      // named option list does not exist.
      return say(`${cmd.name}: unknown type '${c}'`);
  }
}

/** The '/' type: "/[count][format][size]". */
function parseFormat(mons: MonitorSet, mon: Monitor, s: string, p: number, typestr: string, args: HmpArgs): Step {
  p = skipSpaces(s, p);
  let count: number;
  let format: number;
  let size: number;
  if (s[p] === '/') {
    p++;
    count = 1;
    if (/[0-9]/.test(s[p] ?? '')) {
      count = 0;
      while (/[0-9]/.test(s[p] ?? '')) count = (count * 10 + (s.charCodeAt(p++) - 48)) | 0;
    }
    size = -1;
    format = -1;
    for (let guard = 0; p < s.length && guard < s.length + 1; guard++) {
      const ch = s[p]!;
      if ('oduxic'.includes(ch)) format = s.charCodeAt(p);
      else if (ch === 'b') size = 1;
      else if (ch === 'h') size = 2;
      else if (ch === 'w') size = 4;
      else if (ch === 'g' || ch === 'L') size = 8;
      else break;
      p++;
    }
    if (p < s.length && !isSpaceAt(s, p)) {
      monitorPrintf(mons, mon, `invalid char in format: '${s[p]}'\n`);
      return { ok: false };
    }
    if (format < 0) format = mons.fmt.format;
    if (format !== 0x69) {
      if (size < 0) size = mons.fmt.size;
      mons.fmt.size = size;
    }
    mons.fmt.format = format;
  } else {
    count = 1;
    format = mons.fmt.format;
    size = format !== 0x69 ? mons.fmt.size : -1;
  }
  args.set('count', BigInt(count));
  args.set('format', BigInt(format));
  args.set('size', BigInt(size));
  return { ok: true, p, typestr };
}

/** The '-X' flag type, optionally with a string value ('-Xs'). */
function parseFlag(mons: MonitorSet, mon: Monitor, cmd: HmpCommand, s: string, p: number, it: ArgItem, args: HmpArgs): Step {
  const letter = it.rest[0];
  let typestr = it.rest.slice(1);
  if (letter === undefined) {
    monitorPrintf(mons, mon, `${cmd.name}: unknown type '-'\n`);
    return { ok: false };
  }
  const tmp = p;
  p = skipSpaces(s, p);
  if (s[p] === '-') {
    p++;
    if (letter !== s[p]) {
      if (!typestr.includes('-' + (s[p] ?? ''))) {
        monitorPrintf(mons, mon, `${cmd.name}: unsupported option -${s[p] ?? ''}\n`);
        return { ok: false };
      }
      return { ok: true, p: tmp, typestr };
    }
    if (typestr[0] === 's') {
      typestr = typestr.slice(1);
      const flagAt = p++;
      const r = getStr(mons, s, skipSpaces(s, p));
      if ('error' in r) {
        monitorPrintf(mons, mon, `${cmd.name}: value expected for -${s[flagAt]}\n`);
        return { ok: false };
      }
      args.set(it.key, r.value);
      return { ok: true, p: r.end, typestr };
    }
    args.set(it.key, true);
    return { ok: true, p: p + 1, typestr };
  }
  if (typestr[0] === 's') typestr = typestr.slice(1);
  return { ok: true, p, typestr };
}

/**
 * Parse `s` (the text after the command name) by `cmd.argsType`. Returns the arguments, or null
 * after printing the message. @qemu monitor/hmp.c monitor_parse_arguments
 */
export function monitorParseArguments(mons: MonitorSet, mon: Monitor, cmd: HmpCommand, s: string): HmpArgs | null {
  const args: HmpArgs = new Map();
  let typestr = cmd.argsType;
  let p = 0;
  for (let guard = 0; guard <= cmd.argsType.length; guard++) {
    const info = keyGetInfo(typestr);
    if (info === null) break;
    const type = info.rest[0] ?? '\0';
    const step = parseOne(mons, mon, cmd, s, p, { key: info.key, type, rest: info.rest.slice(1) }, args);
    if (!step.ok) return null;
    p = step.p;
    typestr = step.typestr;
  }
  p = skipSpaces(s, p);
  if (p < s.length) {
    monitorPrintf(mons, mon, `${cmd.name}: extraneous characters at the end of line\n`);
    return null;
  }
  return args;
}
