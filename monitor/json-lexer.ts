// The JSON lexer of QMP (qobject/json-lexer.c, 7.2): a byte-driven state machine with QEMU's
// extensions (single-quoted strings, \' escapes) and its error recovery: after a lexical error it
// skips input up to a structural character, a control character other than TAB, or 0xFE/0xFF,
// so a client can resynchronise by sending a newline or 0xFF. Invariants: the token buffer never
// exceeds MAX_TOKEN_SIZE + 1 bytes; every byte fed is consumed exactly once.

/** Token types; values match QEMU's enum so table entries can hold states and tokens alike. */
export const JSON_ERROR = 0;
export const JSON_LCURLY = 100;
export const JSON_RCURLY = 101;
export const JSON_LSQUARE = 102;
export const JSON_RSQUARE = 103;
export const JSON_COLON = 104;
export const JSON_COMMA = 105;
export const JSON_INTEGER = 106;
export const JSON_FLOAT = 107;
export const JSON_KEYWORD = 108;
export const JSON_STRING = 109;
export const JSON_INTERP = 110;
export const JSON_END_OF_INPUT = 111;

const IN_RECOVERY = 1;
const IN_DQ_STRING_ESCAPE = 2;
const IN_DQ_STRING = 3;
const IN_SQ_STRING_ESCAPE = 4;
const IN_SQ_STRING = 5;
const IN_ZERO = 6;
const IN_EXP_DIGITS = 7;
const IN_EXP_SIGN = 8;
const IN_EXP_E = 9;
const IN_MANTISSA = 10;
const IN_MANTISSA_DIGITS = 11;
const IN_DIGITS = 12;
const IN_SIGN = 13;
const IN_KEYWORD = 14;
export const IN_START = 16;
const N_STATES = 18;

const LOOKAHEAD = 0x80;

/** @qemu qobject/json-lexer.c MAX_TOKEN_SIZE */
export const MAX_TOKEN_SIZE = 64 * 1024 * 1024;

/** The transition table, built once; it is constant data, not state. */
const TABLE: Uint8Array = buildTable();

function buildTable(): Uint8Array {
  const t = new Uint8Array(N_STATES * 256); // default 0 = JSON_ERROR
  const set = (st: number, from: number, to: number, v: number): void => {
    for (let c = from; c <= to; c++) t[st * 256 + c] = v;
  };
  const ch = (c: string): number => c.charCodeAt(0);
  const terminal = (st: number, tok: number): void => set(st, 0, 0xff, tok | LOOKAHEAD);

  set(IN_RECOVERY, 0, 0x1f, IN_START | LOOKAHEAD);
  set(IN_RECOVERY, 0x20, 0xfd, IN_RECOVERY);
  set(IN_RECOVERY, 0xfe, 0xff, IN_START | LOOKAHEAD);
  set(IN_RECOVERY, 9, 9, IN_RECOVERY);
  for (const c of '[]{}:,') set(IN_RECOVERY, ch(c), ch(c), IN_START | LOOKAHEAD);

  set(IN_DQ_STRING_ESCAPE, 0x20, 0xfd, IN_DQ_STRING);
  set(IN_DQ_STRING, 0x20, 0xfd, IN_DQ_STRING);
  set(IN_DQ_STRING, ch('\\'), ch('\\'), IN_DQ_STRING_ESCAPE);
  set(IN_DQ_STRING, ch('"'), ch('"'), JSON_STRING);
  set(IN_SQ_STRING_ESCAPE, 0x20, 0xfd, IN_SQ_STRING);
  set(IN_SQ_STRING, 0x20, 0xfd, IN_SQ_STRING);
  set(IN_SQ_STRING, ch('\\'), ch('\\'), IN_SQ_STRING_ESCAPE);
  set(IN_SQ_STRING, ch("'"), ch("'"), JSON_STRING);

  terminal(IN_ZERO, JSON_INTEGER);
  set(IN_ZERO, ch('0'), ch('9'), JSON_ERROR);
  set(IN_ZERO, ch('.'), ch('.'), IN_MANTISSA);
  terminal(IN_EXP_DIGITS, JSON_FLOAT);
  set(IN_EXP_DIGITS, ch('0'), ch('9'), IN_EXP_DIGITS);
  set(IN_EXP_SIGN, ch('0'), ch('9'), IN_EXP_DIGITS);
  set(IN_EXP_E, ch('-'), ch('-'), IN_EXP_SIGN);
  set(IN_EXP_E, ch('+'), ch('+'), IN_EXP_SIGN);
  set(IN_EXP_E, ch('0'), ch('9'), IN_EXP_DIGITS);
  terminal(IN_MANTISSA_DIGITS, JSON_FLOAT);
  set(IN_MANTISSA_DIGITS, ch('0'), ch('9'), IN_MANTISSA_DIGITS);
  set(IN_MANTISSA_DIGITS, ch('e'), ch('e'), IN_EXP_E);
  set(IN_MANTISSA_DIGITS, ch('E'), ch('E'), IN_EXP_E);
  set(IN_MANTISSA, ch('0'), ch('9'), IN_MANTISSA_DIGITS);
  terminal(IN_DIGITS, JSON_INTEGER);
  set(IN_DIGITS, ch('0'), ch('9'), IN_DIGITS);
  set(IN_DIGITS, ch('e'), ch('e'), IN_EXP_E);
  set(IN_DIGITS, ch('E'), ch('E'), IN_EXP_E);
  set(IN_DIGITS, ch('.'), ch('.'), IN_MANTISSA);
  set(IN_SIGN, ch('0'), ch('0'), IN_ZERO);
  set(IN_SIGN, ch('1'), ch('9'), IN_DIGITS);
  terminal(IN_KEYWORD, JSON_KEYWORD);
  set(IN_KEYWORD, ch('a'), ch('z'), IN_KEYWORD);

  const st = IN_START;
  set(st, ch('"'), ch('"'), IN_DQ_STRING);
  set(st, ch("'"), ch("'"), IN_SQ_STRING);
  set(st, ch('0'), ch('0'), IN_ZERO);
  set(st, ch('1'), ch('9'), IN_DIGITS);
  set(st, ch('-'), ch('-'), IN_SIGN);
  set(st, ch('{'), ch('{'), JSON_LCURLY);
  set(st, ch('}'), ch('}'), JSON_RCURLY);
  set(st, ch('['), ch('['), JSON_LSQUARE);
  set(st, ch(']'), ch(']'), JSON_RSQUARE);
  set(st, ch(','), ch(','), JSON_COMMA);
  set(st, ch(':'), ch(':'), JSON_COLON);
  set(st, ch('a'), ch('z'), IN_KEYWORD);
  for (const c of ' \t\r\n') set(st, ch(c), ch(c), IN_START);
  return t;
}

/** Called with each token: its type (a token type, or a lexer state on a size overflow). */
export type TokenSink = (type: number, token: Uint8Array) => void;

/** @qemu qobject/json-lexer.c JSONLexer (without interpolation: QMP never enables it) */
export interface JsonLexer {
  state: number;
  /** Token bytes: buf[0..len). Grows by doubling up to MAX_TOKEN_SIZE + 1. */
  buf: Uint8Array;
  len: number;
}

export function jsonLexerInit(): JsonLexer {
  return { state: IN_START, buf: new Uint8Array(64), len: 0 };
}

function appendByte(lx: JsonLexer, c: number): void {
  if (lx.len === lx.buf.length) {
    const next = new Uint8Array(Math.min(lx.buf.length * 2, MAX_TOKEN_SIZE + 2));
    next.set(lx.buf);
    lx.buf = next;
  }
  lx.buf[lx.len++] = c;
}

function truncate(lx: JsonLexer): void {
  lx.len = 0;
  // Give back a buffer grown by a large token, so memory stays bounded between messages.
  if (lx.buf.length > 65536) lx.buf = new Uint8Array(64);
}

/** Feed one byte. @qemu qobject/json-lexer.c json_lexer_feed_char */
function jsonLexerFeedChar(lx: JsonLexer, c: number, sink: TokenSink): void {
  let consumed = false;
  for (let guard = 0; !consumed; guard++) {
    if (guard > 4) throw new Error('json lexer: no progress on one byte'); // at most 2 passes
    const next = TABLE[lx.state * 256 + c]!;
    consumed = (next & LOOKAHEAD) === 0;
    let ns = next & ~LOOKAHEAD;
    if (consumed) appendByte(lx, c);
    if (ns >= JSON_LCURLY && ns <= JSON_INTERP) {
      sink(ns, lx.buf.subarray(0, lx.len));
      truncate(lx);
      ns = IN_START;
    } else if (ns === IN_START) {
      truncate(lx);
    } else if (ns === JSON_ERROR) {
      sink(JSON_ERROR, lx.buf.subarray(0, lx.len));
      truncate(lx);
      ns = IN_RECOVERY;
    } else if (ns === IN_RECOVERY) {
      truncate(lx);
    }
    lx.state = ns;
  }
  // Do not let a single token grow to an arbitrary size (a security consideration in QEMU):
  // the streamer gets the oversized token typed by the lexer state and reports the limit.
  if (lx.len > MAX_TOKEN_SIZE) {
    sink(lx.state, lx.buf.subarray(0, lx.len));
    truncate(lx);
    lx.state = IN_START;
  }
}

/** Feed bytes. @qemu qobject/json-lexer.c json_lexer_feed */
export function jsonLexerFeed(lx: JsonLexer, data: Uint8Array, sink: TokenSink): void {
  for (let i = 0; i < data.length; i++) jsonLexerFeedChar(lx, data[i]!, sink);
}
