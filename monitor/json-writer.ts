// JSON output as QEMU writes it (qobject/json-writer.c, qobject/qjson.c): compact mode with ", "
// and ": " separators, pretty mode with a newline and 4 spaces per level, QDict members in hash
// order, strings escaped code point by code point (invalid UTF-8 becomes U+FFFD) and doubles
// printed with "%.17g". Input and output are byte strings.

import { type QObject, qdictEntries } from './qobject.ts';
import { modUtf8Codepoint } from './unicode.ts';

interface Writer {
  pretty: boolean;
  needComma: boolean;
  out: string[];
  /** container_is_array: one entry per open container. */
  stack: boolean[];
  len: number;
}

function emit(w: Writer, s: string): void {
  w.out.push(s);
  w.len += s.length;
}

function prettyNewline(w: Writer): void {
  if (w.pretty) emit(w, '\n' + ' '.repeat(w.stack.length * 4));
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

/** Quote a byte string. @qemu qobject/json-writer.c quoted_str */
export function jsonQuotedStr(str: string): string {
  const out: string[] = ['"'];
  let p = 0;
  // A NUL ends a C string; QEMU strings never contain one (U+0000 is C0 80).
  const nul = str.indexOf('\0');
  const limit = nul < 0 ? str.length : nul;
  const s = nul < 0 ? str : str.slice(0, nul);
  while (p < limit) {
    const { cp: raw, end } = modUtf8Codepoint(s, p, 6);
    p = end; // always > p here: the first byte is consumed even when invalid
    let cp = raw;
    switch (cp) {
      case 0x22: out.push('\\"'); continue;
      case 0x5c: out.push('\\\\'); continue;
      case 0x08: out.push('\\b'); continue;
      case 0x0c: out.push('\\f'); continue;
      case 0x0a: out.push('\\n'); continue;
      case 0x0d: out.push('\\r'); continue;
      case 0x09: out.push('\\t'); continue;
      default:
        if (cp < 0) cp = 0xfffd;
        if (cp > 0xffff) {
          out.push(`\\u${hex4(0xd800 + ((cp - 0x10000) >> 10))}\\u${hex4(0xdc00 + ((cp - 0x10000) & 0x3ff))}`);
        } else if (cp < 0x20 || cp >= 0x7f) {
          out.push(`\\u${hex4(cp)}`);
        } else {
          out.push(String.fromCharCode(cp));
        }
    }
  }
  out.push('"');
  return out.join('');
}

function maybeCommaName(w: Writer, name: string | null): void {
  if (w.needComma) {
    emit(w, ',');
    if (w.pretty) prettyNewline(w);
    else emit(w, ' ');
  } else {
    if (w.len > 0) prettyNewline(w);
    w.needComma = true;
  }
  const inObject = w.stack.length > 0 && !w.stack[w.stack.length - 1];
  if (inObject && name !== null) emit(w, jsonQuotedStr(name) + ': ');
}

/** C's printf("%.17g", d). */
export function formatG17(d: number): string {
  if (Number.isNaN(d)) return 'nan';
  if (!Number.isFinite(d)) return d < 0 ? '-inf' : 'inf';
  if (d === 0) return Object.is(d, -0) ? '-0' : '0';
  const P = 17;
  const exp = Number(d.toExponential(P - 1).split('e')[1]);
  let s: string;
  if (exp < P && exp >= -4) {
    s = d.toFixed(P - 1 - exp);
    if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  } else {
    const [mant, e] = d.toExponential(P - 1).split('e') as [string, string];
    let m = mant.includes('.') ? mant.replace(/0+$/, '').replace(/\.$/, '') : mant;
    if (m === '') m = '0';
    const en = Number(e);
    s = `${m}e${en < 0 ? '-' : '+'}${String(Math.abs(en)).padStart(2, '0')}`;
  }
  return s;
}

function writeValue(w: Writer, name: string | null, v: QObject, depth: number): void {
  if (depth > 100_000) throw new RangeError('json writer: nesting too deep');
  if (v === null) {
    maybeCommaName(w, name);
    emit(w, 'null');
  } else if (typeof v === 'boolean') {
    maybeCommaName(w, name);
    emit(w, v ? 'true' : 'false');
  } else if (typeof v === 'string') {
    maybeCommaName(w, name);
    emit(w, jsonQuotedStr(v));
  } else if (Array.isArray(v)) {
    maybeCommaName(w, name);
    emit(w, '[');
    w.stack.push(true);
    w.needComma = false;
    for (const x of v) writeValue(w, null, x, depth + 1);
    w.stack.pop();
    w.needComma = true;
    prettyNewline(w);
    emit(w, ']');
  } else if (v.t === 'dict') {
    maybeCommaName(w, name);
    emit(w, '{');
    w.stack.push(false);
    w.needComma = false;
    for (const [k, x] of qdictEntries(v)) writeValue(w, k, x, depth + 1);
    w.stack.pop();
    w.needComma = true;
    prettyNewline(w);
    emit(w, '}');
  } else {
    maybeCommaName(w, name);
    emit(w, v.kind === 'double' ? formatG17(v.value) : v.value.toString());
  }
}

/**
 * Serialise `obj` as QEMU does; `pretty` selects the indented form of `-qmp ...,pretty=on`.
 * @qemu qobject/qjson.c qobject_to_json_pretty
 */
export function qobjectToJson(obj: QObject, pretty = false): string {
  const w: Writer = { pretty, needComma: false, out: [], stack: [], len: 0 };
  writeValue(w, null, obj, 0);
  return w.out.join('');
}
