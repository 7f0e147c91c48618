// QDict key order (tdb_hash buckets, newest first in a bucket) and the JSON writer (compact and
// pretty forms, string escapes, %.17g), checked against the bucket table of spec §3.6 and the
// shapes QEMU 7.2 prints in the conformance transcripts.

import { describe, expect, it } from 'vitest';
import { qdictBucket, qdictFrom, qnumDouble, qnumInt, utf8ToBytes } from '../../monitor/qobject.ts';
import { formatG17, jsonQuotedStr, qobjectToJson } from '../../monitor/json-writer.ts';

describe('QDict hash order', () => {
  it('puts common keys in the buckets spec §3.6 lists', () => {
    const expected: Record<string, number> = {
      timestamp: 26, seconds: 5, microseconds: 374, event: 361, data: 505, QMP: 99, version: 184,
      capabilities: 216, qemu: 232, package: 326, major: 481, minor: 225, micro: 225, return: 401,
      reason: 401, id: 486, error: 489, class: 211, desc: 377, status: 202, singlestep: 202,
      running: 246, guest: 223, mode: 252, filename: 313, icount: 18, name: 39, action: 438,
    };
    for (const [k, b] of Object.entries(expected)) expect([k, qdictBucket(k)]).toEqual([k, b]);
  });

  it('prints the greeting, responses and events in QEMU order', () => {
    const triple = qdictFrom([['major', qnumInt(7)], ['minor', qnumInt(2)], ['micro', qnumInt(22)]]);
    const greeting = qdictFrom([['QMP', qdictFrom([['version', qdictFrom([['qemu', triple], ['package', '']])], ['capabilities', ['oob']]])]]);
    expect(qobjectToJson(greeting)).toBe('{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": ""}, "capabilities": ["oob"]}}');
    expect(qobjectToJson(qdictFrom([['return', qdictFrom([])], ['id', 'x']]))).toBe('{"return": {}, "id": "x"}');
    expect(qobjectToJson(qdictFrom([['error', qdictFrom([['class', 'GenericError'], ['desc', 'd']])], ['id', 'x']])))
      .toBe('{"id": "x", "error": {"class": "GenericError", "desc": "d"}}');
    const st = qdictFrom([['running', true], ['singlestep', false], ['status', 'running']]);
    expect(qobjectToJson(qdictFrom([['return', st]]))).toBe('{"return": {"status": "running", "singlestep": false, "running": true}}');
  });

  it('keeps a replaced key in place and moves a re-inserted one to the front of its bucket', () => {
    const d = qdictFrom([['minor', qnumInt(1)], ['micro', qnumInt(2)]]);
    expect(qobjectToJson(d)).toBe('{"micro": 2, "minor": 1}');
    d.map.set('minor', qnumInt(3));
    expect(qobjectToJson(d)).toBe('{"micro": 2, "minor": 3}');
    d.map.delete('minor');
    d.map.set('minor', qnumInt(4));
    expect(qobjectToJson(d)).toBe('{"minor": 4, "micro": 2}');
  });
});

describe('JSON writer', () => {
  it('pretty form: 4 spaces per level, closing brackets on their own line, empty containers open', () => {
    const v = qdictFrom([['return', qdictFrom([])], ['id', [qnumInt(1), 'a']]]);
    expect(qobjectToJson(v, true)).toBe('{\n    "return": {\n    },\n    "id": [\n        1,\n        "a"\n    ]\n}');
  });

  it('escapes like quoted_str: control chars, DEL and non-ASCII as \\uXXXX, invalid UTF-8 as U+FFFD', () => {
    expect(jsonQuotedStr('a"b\\c\b\f\n\r\t/')).toBe('"a\\"b\\\\c\\b\\f\\n\\r\\t/"');
    expect(jsonQuotedStr('\x01\x7f')).toBe('"\\u0001\\u007F"');
    expect(jsonQuotedStr(utf8ToBytes('é😀'))).toBe('"\\u00E9\\uD83D\\uDE00"');
    expect(jsonQuotedStr('"qu\xff')).toBe('"\\"qu\\uFFFD"');
    expect(jsonQuotedStr('\xc0\x80x')).toBe('"\\u0000x"');
  });

  it('prints integers exactly and doubles with %.17g', () => {
    expect(qobjectToJson([qnumInt(-(1n << 63n)), qnumInt((1n << 64n) - 1n)])).toBe('[-9223372036854775808, 18446744073709551615]');
    expect(formatG17(0.1)).toBe('0.10000000000000001');
    expect(formatG17(1.5)).toBe('1.5');
    expect(formatG17(1e21)).toBe('1e+21');
    expect(formatG17(1e-5)).toBe('1.0000000000000001e-05');
    expect(formatG17(123456789012345680000)).toBe('1.2345678901234568e+20');
    expect(formatG17(-0)).toBe('-0');
    expect(qobjectToJson(qnumDouble(2))).toBe('2');
  });
});
