// The compact JSON writer QEMU uses for the migration stream's vmdesc (qobject/json-writer.c,
// with pretty = false): members separated by ", ", names followed by ": ", strings escaped as
// quoted_str does (control characters and everything outside printable ASCII as \uXXXX).
// Invariant: containers are closed in the order they were opened (asserted).

import { assert } from '../util/index.ts';

/** @qemu qobject/json-writer.c JSONWriter */
export interface JSONWriter {
  parts: string[];
  /** One entry per open container: true for an array. */
  stack: boolean[];
  needComma: boolean;
}

export function jsonWriterNew(): JSONWriter {
  return { parts: [], stack: [], needComma: false };
}

/** @qemu quoted_str */
export function jsonQuotedStr(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    switch (cp) {
      case 0x22: out += '\\"'; break;
      case 0x5c: out += '\\\\'; break;
      case 0x08: out += '\\b'; break;
      case 0x0c: out += '\\f'; break;
      case 0x0a: out += '\\n'; break;
      case 0x0d: out += '\\r'; break;
      case 0x09: out += '\\t'; break;
      default:
        if (cp > 0xffff) {
          const hi = 0xd800 + ((cp - 0x10000) >> 10);
          const lo = 0xdc00 + ((cp - 0x10000) & 0x3ff);
          out += `\\u${hex4(hi)}\\u${hex4(lo)}`;
        } else if (cp < 0x20 || cp >= 0x7f) {
          out += `\\u${hex4(cp)}`;
        } else {
          out += ch;
        }
    }
  }
  return out + '"';
}

function hex4(n: number): string {
  return n.toString(16).toUpperCase().padStart(4, '0');
}

/** @qemu maybe_comma_name: separator, then `"name": ` inside an object. */
function maybeCommaName(w: JSONWriter, name: string | null): void {
  if (w.needComma) w.parts.push(', ');
  else w.needComma = true;
  const inObject = w.stack.length > 0 && w.stack[w.stack.length - 1] === false;
  if (inObject) {
    assert(name !== null, 'JSON object member without a name');
    w.parts.push(jsonQuotedStr(name), ': ');
  } else {
    assert(name === null, `JSON array element given a name (${name})`);
  }
}

/** @qemu json_writer_start_object */
export function jsonWriterStartObject(w: JSONWriter, name: string | null): void {
  maybeCommaName(w, name);
  w.parts.push('{');
  w.stack.push(false);
  w.needComma = false;
}

/** @qemu json_writer_end_object */
export function jsonWriterEndObject(w: JSONWriter): void {
  assert(w.stack.pop() === false, 'json_writer_end_object outside an object');
  w.parts.push('}');
  w.needComma = true;
}

/** @qemu json_writer_start_array */
export function jsonWriterStartArray(w: JSONWriter, name: string | null): void {
  maybeCommaName(w, name);
  w.parts.push('[');
  w.stack.push(true);
  w.needComma = false;
}

/** @qemu json_writer_end_array */
export function jsonWriterEndArray(w: JSONWriter): void {
  assert(w.stack.pop() === true, 'json_writer_end_array outside an array');
  w.parts.push(']');
  w.needComma = true;
}

/** @qemu json_writer_str */
export function jsonWriterStr(w: JSONWriter, name: string | null, value: string): void {
  maybeCommaName(w, name);
  w.parts.push(jsonQuotedStr(value));
}

/** @qemu json_writer_int64 */
export function jsonWriterInt64(w: JSONWriter, name: string | null, value: number): void {
  assert(Number.isSafeInteger(value), `JSON integer ${value} is not a safe integer`);
  maybeCommaName(w, name);
  w.parts.push(String(value));
}

/** The text written so far (all containers must be closed). @qemu json_writer_get */
export function jsonWriterGet(w: JSONWriter): string {
  assert(w.stack.length === 0, `JSON writer has ${w.stack.length} open containers`);
  return w.parts.join('');
}
