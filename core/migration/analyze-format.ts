// Text formatting of the stream walk (analyze.ts), in the format of the reference walk that
// ships with QEMU 7.2's stream in shared/streams (*.dump.txt): Python-style reprs of strings,
// bytes and lists, compact JSON counters, and the fixed-width record lines.
// Invariant: pure functions of their arguments.

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Bytes as Python 3 decodes them for display (UTF-8, invalid sequences replaced). */
export function pyDecode(b: Uint8Array): string {
  return utf8.decode(b);
}

function hex2(c: number): string {
  return c.toString(16).padStart(2, '0');
}

function pyEscape(
s: string, quote: string, bytes: boolean): string {
  let out = '';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f || (c >= 0x80 && (bytes || c < 0xa0))) out += `\\x${hex2(c)}`;

    else out += ch;
  }
  return out;
}

function pyQuote(s: string): string {
  return s.includes("'") && !s.includes('"') ? '"' : "'";
}

/** Python's repr() of a str. */
export function pyStrRepr(s: string): string {
  const q = pyQuote(s);
  return `${q}${pyEscape(s, q, false)}${q}`;
}

/** Python's repr() of a bytes object. */
export function pyBytesRepr(b: Uint8Array): string {
  const s = String.fromCharCode(...b);
  const q = pyQuote(s);
  return `b${q}${pyEscape(s, q, true)}${q}`;
}

/** Python's repr() of a list of str. */
export function pyListRepr(items: string[]): string {
  return `[${items.map(pyStrRepr).join(', ')}]`;
}

/** Python's json.dumps of a flat object of numbers: {"a": 1, "b": 2}. */
export function pyJsonCounters(entries: Array<[string, number]>): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${v}`).join(', ')}}`;
}

/** "  @0x000011 SECTION_START   detail": the kind padded to 15 columns, detail optional. */
export function recordLine(offset: number, kind: string, detail: string): string {
  const head = `  @0x${offset.toString(16).padStart(6, '0')} ${kind.padEnd(15)}`;
  return detail === '' ? head : `${head} ${detail}`;
}
