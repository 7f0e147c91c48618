// The JSON parser of QMP (qobject/json-parser.c): a recursive-descent parser over the tokens of
// one top-level value, with QEMU's error texts ("JSON parse error, expecting value", ...). The
// first error wins, as QEMU's parse_error keeps only the first. Recursion is bounded by the
// streamer's nesting limit (1024).

import {
  JSON_COLON, JSON_COMMA, JSON_FLOAT, JSON_INTEGER, JSON_KEYWORD, JSON_LCURLY, JSON_LSQUARE,
  JSON_RCURLY, JSON_RSQUARE, JSON_STRING,
} from './json-lexer.ts';
import { type QObject, type QDict, qdictNew, qdictPut, qnumDouble, qnumInt } from './qobject.ts';
import { modUtf8Codepoint, modUtf8Encode } from './unicode.ts';

/** A token: type and its text as a byte string. */
export interface JsonToken {
  type: number;
  str: string;
}

interface Ctx {
  err: string | null;
  tokens: JsonToken[];
  pos: number;
}

function parseError(ctx: Ctx, msg: string): void {
  if (ctx.err !== null) return;
  // QEMU formats into a 1024-byte buffer.
  ctx.err = 'JSON parse error, ' + (msg.length > 1023 ? msg.slice(0, 1023) : msg);
}

function peek(ctx: Ctx): JsonToken | null {
  return ctx.tokens[ctx.pos] ?? null;
}

function pop(ctx: Ctx): JsonToken | null {
  const t = ctx.tokens[ctx.pos] ?? null;
  if (t) ctx.pos++;
  return t;
}

function cvt4hex(s: string, at: number): number {
  let cp = 0;
  for (let i = 0; i < 4; i++) {
    const c = s.charCodeAt(at + i);
    let d: number;
    if (c >= 0x30 && c <= 0x39) d = c - 0x30;
    else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
    else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
    else return -1;
    cp = (cp << 4) | d;
  }
  return cp;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '"': '"', "'": "'", '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t',
};

/** @qemu qobject/json-parser.c parse_string */
function parseString(ctx: Ctx, token: JsonToken): string | null {
  const s = token.str;
  const quote = s[0]!;
  let p = 1;
  const out: string[] = [];
  while (p < s.length && s[p] !== quote) {
    if (s[p] === '\\') {
      const beg = p++;
      const e = s[p++] ?? '';
      const simple = SIMPLE_ESCAPES[e];
      if (simple !== undefined) {
        out.push(simple);
        continue;
      }
      if (e !== 'u') {
        parseError(ctx, 'invalid escape sequence in string');
        return null;
      }
      let cp = cvt4hex(s, p);
      p += 4;
      if (cp >= 0xd800 && cp <= 0xdbff && s[p] === '\\' && s[p + 1] === 'u') {
        cp = 0x10000 + ((cp & 0x3ff) << 10);
        const trailing = cvt4hex(s, p + 2);
        if (trailing >= 0xdc00 && trailing <= 0xdfff) {
          cp |= trailing & 0x3ff;
          p += 6;
        } else {
          cp = -1;
        }
      }
      const enc = modUtf8Encode(cp);
      if (enc === null) {
        // "%.*s" stops at the string's end, as the C string does at its NUL.
        parseError(ctx, `${s.slice(beg, Math.min(p, s.length))} is not a valid Unicode character`);
        return null;
      }
      out.push(enc);
      continue;
    }
    const { cp, end } = modUtf8Codepoint(s, p, 6);
    if (cp < 0) {
      parseError(ctx, 'invalid UTF-8 sequence in string');
      return null;
    }
    p = end;
    out.push(modUtf8Encode(cp)!);
  }
  return out.join('');
}

/** @qemu qobject/json-parser.c parse_pair */
function parsePair(ctx: Ctx, dict: QDict, depth: number): boolean {
  if (peek(ctx) === null) {
    parseError(ctx, 'premature EOI');
    return false;
  }
  const key = parseValue(ctx, depth);
  if (typeof key !== 'string') {
    parseError(ctx, 'key is not a string in object');
    return false;
  }
  const colon = pop(ctx);
  if (colon === null) {
    parseError(ctx, 'premature EOI');
    return false;
  }
  if (colon.type !== JSON_COLON) {
    parseError(ctx, 'missing : in object pair');
    return false;
  }
  const value = parseValue(ctx, depth);
  if (value === undefined) {
    parseError(ctx, 'Missing value in dict');
    return false;
  }
  if (dict.map.has(key)) {
    parseError(ctx, 'duplicate key');
    return false;
  }
  qdictPut(dict, key, value);
  return true;
}

/** Parse a member list or element list after its opening token (object or array). */
function parseContainer(ctx: Ctx, isArray: boolean, depth: number): QObject | undefined {
  pop(ctx);
  const close = isArray ? JSON_RSQUARE : JSON_RCURLY;
  const dict = qdictNew();
  const list: QObject[] = [];
  const item = (): boolean => {
    if (!isArray) return parsePair(ctx, dict, depth);
    const v = parseValue(ctx, depth);
    if (v === undefined) {
      parseError(ctx, 'expecting value');
      return false;
    }
    list.push(v);
    return true;
  };
  const first = peek(ctx);
  if (first === null) {
    parseError(ctx, 'premature EOI');
    return undefined;
  }
  if (first.type === close) {
    pop(ctx);
    return isArray ? list : dict;
  }
  if (!item()) return undefined;
  for (let n = 0; ; n++) {
    const tok = pop(ctx);
    if (tok === null) {
      parseError(ctx, 'premature EOI');
      return undefined;
    }
    if (tok.type === close) break;
    if (tok.type !== JSON_COMMA) {
      parseError(ctx, isArray ? 'expected separator in list' : 'expected separator in dict');
      return undefined;
    }
    if (!item()) return undefined;
    if (n > ctx.tokens.length) throw new Error('json parser: no progress');
  }
  return isArray ? list : dict;
}

function parseLiteral(ctx: Ctx): QObject | undefined {
  const tok = pop(ctx)!;
  if (tok.type === JSON_STRING) return parseString(ctx, tok) ?? undefined;
  if (tok.type === JSON_INTEGER) {
    // int64 if possible, else uint64 (non-negative only), else a double.
    const v = BigInt(tok.str);
    if (v >= -(1n << 63n) && v < 1n << 63n) return qnumInt(v);
    if (tok.str[0] !== '-' && v < 1n << 64n) return qnumInt(v);
  }
  return qnumDouble(Number(tok.str));
}

/** @qemu qobject/json-parser.c parse_value; undefined means failure (null is JSON null). */
function parseValue(ctx: Ctx, depth: number): QObject | undefined {
  const tok = peek(ctx);
  if (tok === null) {
    parseError(ctx, 'premature EOI');
    return undefined;
  }
  switch (tok.type) {
    case JSON_LCURLY: return parseContainer(ctx, false, depth + 1);
    case JSON_LSQUARE: return parseContainer(ctx, true, depth + 1);
    case JSON_INTEGER:
    case JSON_FLOAT:
    case JSON_STRING:
      return parseLiteral(ctx);
    case JSON_KEYWORD: {
      pop(ctx);
      if (tok.str === 'true') return true;
      if (tok.str === 'false') return false;
      if (tok.str === 'null') return null;
      parseError(ctx, `invalid keyword '${tok.str}'`);
      return undefined;
    }
    default:
      parseError(ctx, 'expecting value');
      return undefined;
  }
}

/**
 * Parse the tokens of one top-level value. Returns the value or QEMU's error text.
 * @qemu qobject/json-parser.c json_parser_parse
 */
export function jsonParserParse(tokens: JsonToken[]): { value: QObject } | { error: string } {
  const ctx: Ctx = { err: null, tokens, pos: 0 };
  const v = parseValue(ctx, 0);
  if (ctx.err !== null || v === undefined) return { error: ctx.err ?? 'JSON parse error, expecting value' };
  return { value: v };
}
