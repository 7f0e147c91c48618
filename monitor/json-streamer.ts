// The JSON message streamer of QMP (qobject/json-streamer.c): collects the lexer's tokens until
// braces and brackets balance, then parses them as one message, enforcing QEMU's limits (total
// token bytes 64 MiB, 2 Mi tokens, nesting 1024) with its error texts. Every error resets the
// collected tokens, so the next message starts clean.

import { arrayToBytes, type QObject } from './qobject.ts';
import {
  type JsonLexer, JSON_ERROR, JSON_LCURLY, JSON_LSQUARE, JSON_RCURLY, JSON_RSQUARE, MAX_TOKEN_SIZE,
  jsonLexerFeed, jsonLexerInit,
} from './json-lexer.ts';
import { type JsonToken, jsonParserParse } from './json-parser.ts';

/** @qemu qobject/json-streamer.c MAX_TOKEN_COUNT */
export const MAX_TOKEN_COUNT = 2 * 1024 * 1024;
/** @qemu qobject/json-streamer.c MAX_NESTING */
export const MAX_NESTING = 1024;

/** One parsed message or error, handed to the emit callback. */
export type JsonMessage = { value: QObject; error: null } | { value: null; error: string };

/** @qemu include/qapi/qmp/json-parser.h JSONMessageParser */
export interface JsonMessageParser {
  lexer: JsonLexer;
  braceCount: number;
  bracketCount: number;
  tokens: JsonToken[];
  tokenSize: number;
}

export function jsonMessageParserInit(): JsonMessageParser {
  return { lexer: jsonLexerInit(), braceCount: 0, bracketCount: 0, tokens: [], tokenSize: 0 };
}

function processToken(p: JsonMessageParser, type: number, input: Uint8Array, emit: (msg: JsonMessage) => void): void {
  let result: JsonMessage | null = null;
  switch (type) {
    case JSON_LCURLY: p.braceCount++; break;
    case JSON_RCURLY: p.braceCount--; break;
    case JSON_LSQUARE: p.bracketCount++; break;
    case JSON_RSQUARE: p.bracketCount--; break;
    case JSON_ERROR:
      result = { value: null, error: `JSON parse error, stray '${arrayToBytes(input)}'` };
      break;
    default: break;
  }
  if (result === null) {
    if (p.tokenSize + input.length + 1 > MAX_TOKEN_SIZE) {
      result = { value: null, error: 'JSON token size limit exceeded' };
    } else if (p.tokens.length + 1 > MAX_TOKEN_COUNT) {
      result = { value: null, error: 'JSON token count limit exceeded' };
    } else if (p.bracketCount + p.braceCount > MAX_NESTING) {
      result = { value: null, error: 'JSON nesting depth limit exceeded' };
    }
  }
  if (result === null) {
    p.tokens.push({ type, str: arrayToBytes(input) });
    p.tokenSize += input.length;
    // QEMU's condition checks bracket_count twice (never brace_count >= 0): a stray '}' thus
    // completes a message at once, and "[}" keeps waiting. Reproduced as is.
    if ((p.braceCount > 0 || p.bracketCount > 0) && p.bracketCount >= 0) return;
    const r = jsonParserParse(p.tokens);
    result = 'value' in r ? { value: r.value, error: null } : { value: null, error: r.error };
  }
  p.braceCount = 0;
  p.bracketCount = 0;
  p.tokens = [];
  p.tokenSize = 0;
  emit(result);
}

/**
 * Feed bytes; `emit` is called once per complete message or error, in input order.
 * @qemu qobject/json-streamer.c json_message_parser_feed
 */
export function jsonMessageParserFeed(p: JsonMessageParser, data: Uint8Array, emit: (msg: JsonMessage) => void): void {
  jsonLexerFeed(p.lexer, data, (type, token) => processToken(p, type, token, emit));
}

/** Bytes held by the parser (token buffer and queued tokens), for memory-bound checks. */
export function jsonMessageParserHeldBytes(p: JsonMessageParser): number {
  return p.lexer.buf.length + p.tokenSize + p.tokens.length * 16;
}
