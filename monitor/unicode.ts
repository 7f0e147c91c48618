// QEMU's "modified UTF-8" decoder and encoder (util/unicode.c), used by the JSON parser to
// validate strings and by the JSON writer to escape them. Byte strings in, code points out.
// Modified UTF-8 encodes U+0000 as C0 80 and rejects overlong forms, surrogates, non-characters
// and code points above U+10FFFF.

const MIN_CP = [0x80, 0x800, 0x10000, 0x200000, 0x4000000];

/**
 * Decode one code point at `pos` of byte string `s`, looking at most `n` bytes. Returns the code
 * point (-1 if invalid) and the position after the bytes consumed. @qemu mod_utf8_codepoint
 */
export function modUtf8Codepoint(s: string, pos: number, n: number): { cp: number; end: number } {
  if (n === 0 || pos >= s.length || s.charCodeAt(pos) === 0) return { cp: -1, end: pos };
  let p = pos;
  let byte = s.charCodeAt(p++);
  let cp: number;
  if (byte < 0x80) {
    cp = byte;
  } else if (byte >= 0xfe) {
    cp = -1; // impossible bytes 0xFE, 0xFF
  } else if ((byte & 0x40) === 0) {
    cp = -1; // unexpected continuation byte
  } else {
    let len = 0;
    let mask = 0x80;
    for (; byte & mask; mask >>= 1) len++;
    cp = byte & (mask - 1);
    for (let i = 1; i < len; i++) {
      byte = i < n && p < s.length ? s.charCodeAt(p) : 0;
      if ((byte & 0xc0) !== 0x80) return { cp: -1, end: p }; // continuation byte missing
      p++;
      cp = cp * 64 + (byte & 0x3f);
    }
    if (cp > 0x10ffff) {
      cp = -1;
    } else if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) {
      cp = -1; // noncharacter
    } else if (cp >= 0xd800 && cp <= 0xdfff) {
      cp = -1; // surrogate
    } else if (cp < MIN_CP[len - 2]! && !(cp === 0 && len === 2)) {
      cp = -1; // overlong, except C0 80
    }
  }
  return { cp, end: p };
}

function isValidCodepoint(cp: number): boolean {
  if (cp < 0 || cp > 0x10ffff) return false;
  if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) return false;
  return !(cp >= 0xd800 && cp <= 0xdfff);
}

/** Encode `cp` in modified UTF-8 as a byte string, or null if invalid. @qemu mod_utf8_encode */
export function modUtf8Encode(cp: number): string | null {
  if (!isValidCodepoint(cp)) return null;
  if (cp > 0 && cp <= 0x7f) return String.fromCharCode(cp);
  if (cp <= 0x7ff) return String.fromCharCode(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
  if (cp <= 0xffff) {
    return String.fromCharCode(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  }
  return String.fromCharCode(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
}
