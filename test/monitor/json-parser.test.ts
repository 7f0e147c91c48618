// The QMP JSON streamer: QEMU's lexer rules (single quotes, recovery after errors), its parser
// messages, and the size, count and depth limits, fed byte strings directly.

import { describe, expect, it } from 'vitest';
import { type JsonMessage, jsonMessageParserFeed, jsonMessageParserInit, jsonMessageParserHeldBytes, MAX_NESTING } from '../../monitor/json-streamer.ts';
import { MAX_TOKEN_SIZE } from '../../monitor/json-lexer.ts';
import { qobjectToJson } from '../../monitor/json-writer.ts';

function feed(text: string): string[] {
  const p = jsonMessageParserInit();
  const out: string[] = [];
  jsonMessageParserFeed(p, new Uint8Array(Buffer.from(text, 'latin1')), (m: JsonMessage) => {
    out.push(m.error !== null ? `ERR ${m.error}` : qobjectToJson(m.value));
  });
  return out;
}

describe('JSON streamer and parser', () => {
  it('parses values, single-quoted strings and escapes', () => {
    expect(feed(`{"a": [1, -2, 3.5, true, false, null], 'b': 'it\\'s "x"'}`)).toEqual([
      '{"a": [1, -2, 3.5, true, false, null], "b": "it\'s \\"x\\""}',
    ]);
    expect(feed('"\\u00e9\\ud83d\\ude00\\/"')).toEqual(['"\\u00E9\\uD83D\\uDE00/"']);
    expect(feed('18446744073709551615 -9223372036854775809 ')).toEqual(['18446744073709551615', '-9.2233720368547758e+18']);
  });

  it('emits each top-level value at once; whitespace and splits do not matter', () => {
    expect(feed('{"a":1}{"b":2} 3\n[4] 5')).toEqual(['{"a": 1}', '{"b": 2}', '3', '[4]']); // 5 waits for a delimiter
    const p = jsonMessageParserInit();
    const out: string[] = [];
    for (const ch of '{"execute": "query-\nstatus"}') {
      jsonMessageParserFeed(p, new Uint8Array([ch.charCodeAt(0)]), (m) => out.push(m.error ?? qobjectToJson(m.value)));
    }
    // The newline inside the string is the stray byte; recovery skips to the '}'.
    expect(out).toEqual(['JSON parse error, stray \'"query-\n\'', 'JSON parse error, expecting value']);
  });

  it("reports QEMU's parse errors", () => {
    expect(feed('{foo}')).toEqual(["ERR JSON parse error, invalid keyword 'foo'"]);
    expect(feed('}')).toEqual(['ERR JSON parse error, expecting value']);
    expect(feed('{"a" 1}')).toEqual(['ERR JSON parse error, missing : in object pair']);
    expect(feed('{1: 2}')).toEqual(['ERR JSON parse error, key is not a string in object']);
    expect(feed('{"a": 1 "b": 2}')).toEqual(['ERR JSON parse error, expected separator in dict']);
    expect(feed('[1 2]')).toEqual(['ERR JSON parse error, expected separator in list']);
    expect(feed('{"a": 1, "a": 2}')).toEqual(['ERR JSON parse error, duplicate key']);
    expect(feed('[1,]')).toEqual(['ERR JSON parse error, expecting value']);
    expect(feed('"\\x"')).toEqual(['ERR JSON parse error, invalid escape sequence in string']);
    expect(feed('"\\ud800"')).toEqual(['ERR JSON parse error, \\ud800 is not a valid Unicode character']);
    expect(feed('"\xc3("')).toEqual(['ERR JSON parse error, invalid UTF-8 sequence in string']);
    expect(feed('01')).toEqual(["ERR JSON parse error, stray '01'"]);
  });

  it('recovers after a lexical error at the next structural or control character', () => {
    expect(feed('{"execute": "qu\xffery-status"}\n')).toEqual([
      "ERR JSON parse error, stray '\"qu\xff'", 'ERR JSON parse error, expecting value',
    ]);
    expect(feed('\x01\n{"a": 1}')).toEqual(["ERR JSON parse error, stray '\x01'", '{"a": 1}']);
    // 0xFF ends the recovery and is then itself a stray byte.
    expect(feed('@@@ junk\xff{"a": 1}')).toEqual(["ERR JSON parse error, stray '@'", "ERR JSON parse error, stray '\xff'", '{"a": 1}']);
    expect(feed('@@@ junk\n{"a": 1}')).toEqual(["ERR JSON parse error, stray '@'", '{"a": 1}']);
  });

  it('keeps QEMU\'s brace/bracket quirk: "[}" waits, a stray "]" completes at once', () => {
    expect(feed('[}')).toEqual([]);
    expect(feed(']')).toEqual(['ERR JSON parse error, expecting value']);
  });

  it('limits nesting to 1024 and resets after the error', () => {
    expect(feed('['.repeat(MAX_NESTING) + ']'.repeat(MAX_NESTING))).toHaveLength(1);
    const out = feed('['.repeat(MAX_NESTING + 1) + ' {"ok": 1}');
    expect(out[0]).toBe('ERR JSON nesting depth limit exceeded');
  });

  it('reports a 64 MiB token with the size limit error and then parses the next message', () => {
    const p = jsonMessageParserInit();
    const out: string[] = [];
    const emit = (m: JsonMessage): void => void out.push(m.error ?? qobjectToJson(m.value));
    jsonMessageParserFeed(p, new Uint8Array([0x22]), emit); // opening quote
    const chunk = new Uint8Array(1 << 20).fill(0x61);
    for (let i = 0; i < 63; i++) jsonMessageParserFeed(p, chunk, emit);
    jsonMessageParserFeed(p, chunk.subarray(1), emit);
    expect(out).toEqual([]); // the token is exactly 64 MiB: still accepted
    jsonMessageParserFeed(p, new Uint8Array([0x61]), emit);
    expect(out).toEqual(['JSON token size limit exceeded']);
    expect(MAX_TOKEN_SIZE).toBe(64 << 20);
    expect(jsonMessageParserHeldBytes(p)).toBeLessThan(1 << 20);
    jsonMessageParserFeed(p, new Uint8Array(Buffer.from('"\n{"execute": "x"}')), emit);
    expect(out.at(-1)).toBe('{"execute": "x"}');
  }, 60_000);
});
