// The record/replay log format (core/replay/log-*.ts, FORMAT.md): varint and field codecs,
// every event kind through encode and decode, and the header's self-description and refusals
// (not a log, another format version, damaged, edited configuration, another detvm version,
// another configuration or guest image), each with a message that says why.
import { describe, expect, it } from 'vitest';
import {
  type LogEventBody, byteWriterCreate, byteWriterTake, getSvarint, getUvarint, LogCorruptError, logCursorCreate,
  logEventRead, logEventWrite, putSvarint, putUvarint, replayHeaderCreate, replayHeaderDecode, replayHeaderEncode,
  replayHeaderCheck, ReplayRefusedError, LOG_FORMAT_VERSION, replayLogScan, EVENT_SCHEMA, type ReplayHeaderInit,
} from '../../../core/replay/index.ts';

const INIT: ReplayHeaderInit = {
  detvm: '0.1.0', mode: 'live', config: { smp: 2, memory: 134217728, serial: 'null' }, image: { name: 'g.elf', bytes: 4, hash: '0123456789abcdef' },
  seed: 7, hostBaseSec: 1_700_000_000, maxSliceInsns: 500_000, icountShift: 0, smp: 2, traceLevel: 0, filename: 'x.rr',
  rrsnapshot: null, checkpointEvery: 32,
};

describe('log codec', () => {
  it('round-trips varints up to 2^53 - 1 and signed values', () => {
    const w = byteWriterCreate(4);
    const u = [0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER];
    const sv = [0, -1, 1, -64, 64, -(2 ** 40), 2 ** 40 + 3];
    for (const v of u) putUvarint(w, v);
    for (const v of sv) putSvarint(w, v);
    const b = byteWriterTake(w);
    const c = { pos: 0 };
    expect(u.map(() => getUvarint(b, c))).toEqual(u);
    expect(sv.map(() => getSvarint(b, c))).toEqual(sv);
    expect(c.pos).toBe(b.length);
  });

  it('refuses truncated and over-long varints with the offset', () => {
    expect(() => getUvarint(new Uint8Array([0x80, 0x80]), { pos: 0 })).toThrow(/byte 2: unexpected end/);
    expect(() => getUvarint(new Uint8Array(9).fill(0xff), { pos: 0 })).toThrow(LogCorruptError);
    expect(() => putUvarint(byteWriterCreate(), -1)).toThrow(RangeError);
  });

  it('encodes and decodes every event kind at its position', () => {
    const events: LogEventBody[] = [
      { k: 'clock', which: 'mono', value: 1_000_000 }, { k: 'clock', which: 'wall', value: 5 },
      { k: 'clock', which: 'mono', value: 999_000 },
      { k: 'arrive', ordinal: null, input: { kind: 'data', fd: 9, data: new Uint8Array([1, 2, 250]) } },
      { k: 'arrive', ordinal: 3, input: { kind: 'hup', fd: 9 } },
      { k: 'arrive', ordinal: null, input: { kind: 'accept', fd: 4, conn: 12 } },
      { k: 'arrive', ordinal: null, input: { kind: 'writable', fd: 12, writable: true } },
      { k: 'fd-open', fd: 12, listener: false, name: 'conn0', info: { local: { type: 'unix', path: '/s', abstract: false, tight: true }, peer: { type: 'unix', path: '/s', abstract: false, tight: true } } },
      { k: 'settled', fd: 4, status: 'listening', error: null, local: { type: 'inet', host: '127.0.0.1', port: '40000' } },
      { k: 'connector', fd: 5, field: 'error', value: 'refused' }, { k: 'signal', signal: 15, pid: 1234 },
      { k: 'stdio-signal', signal: 'SIGINT' }, { k: 'chr-send', chardev: 'serial0', data: new Uint8Array([0x41]) },
      { k: 'schedule', atNs: 77, input: { kind: 'hup', fd: 3 } }, { k: 'horizon', ns: null }, { k: 'horizon', ns: 0 },
      { k: 'slice-cap', insns: 500_000 }, { k: 'io', op: 'listen', args: '[1]', result: '{"fd":4}' },
      { k: 'write', fd: 12, index: 7, result: -1, writable: false },
      { k: 'checkpoint', state: '0123456789abcdef', trace: 'fedcba9876543210', traceSeq: 99, output: '00000000ffffffff' },
      { k: 'end', exit: 0, reason: 'closed', state: '1111111122222222', trace: '3333333344444444', traceSeq: 1, output: '5555555566666666' },
    ];
    const w = byteWriterCreate();
    const cur = logCursorCreate(0);
    events.forEach((e, i) => logEventWrite(w, cur, i * 2, i * 100, e));
    const b = byteWriterTake(w);
    const rd = logCursorCreate(0);
    const back = events.map(() => logEventRead(b, rd));
    expect(logEventRead(b, rd)).toBeNull();
    back.forEach((e, i) => {
      expect(e).toEqual({ ...events[i], iteration: i * 2, icount: i * 100 });
    });
    expect(Object.keys(EVENT_SCHEMA).length).toBe(17);
  });

  it('refuses positions that go back', () => {
    const w = byteWriterCreate();
    const cur = logCursorCreate(0);
    logEventWrite(w, cur, 5, 10, { k: 'horizon', ns: null });
    expect(() => logEventWrite(w, cur, 4, 10, { k: 'horizon', ns: null })).toThrow(/went back/);
  });

  it('scans a log: event counts, its end, a damaged tail', () => {
    const w = byteWriterCreate();
    const cur = logCursorCreate(0);
    logEventWrite(w, cur, 1, 0, { k: 'clock', which: 'mono', value: 10 });
    logEventWrite(w, cur, 3, 40, { k: 'end', exit: null, reason: 'r', state: '0'.repeat(16), trace: '0'.repeat(16), traceSeq: 0, output: '0'.repeat(16) });
    const b = byteWriterTake(w);
    const idx = replayLogScan(b, 0);
    expect(idx).toMatchObject({ events: 2, lastIteration: 3, lastIcount: 40, corrupt: null });
    expect(idx.end?.reason).toBe('r');
    const damaged = new Uint8Array([...b.subarray(0, 4), 0x63, 0, 0]);
    expect(replayLogScan(damaged, 0).corrupt).toMatch(/unknown event kind 99/);
  });
});

describe('log header', () => {
  const header = replayHeaderCreate(INIT);
  const bytes = replayHeaderEncode(header);

  it('describes itself: magic, version, configuration, image, seed and the event schema', () => {
    expect(Buffer.from(bytes.subarray(0, 8)).toString('latin1')).toBe('DETVM-RR');
    const { header: h, eventsAt } = replayHeaderDecode(bytes, 'x.rr');
    expect(eventsAt).toBe(bytes.length);
    expect(h).toEqual(header);
    expect(h.format).toBe(LOG_FORMAT_VERSION);
    expect(h.events['1']).toEqual({ name: 'clock-mono', fields: ['delta:svarint'] });
  });

  it('refuses what is not a detvm log', () => {
    expect(() => replayHeaderDecode(new TextEncoder().encode('QEVM....garbage!'), 'f.bin')).toThrow(
      new ReplayRefusedError('f.bin is not a detvm record/replay log (it does not start with "DETVM-RR")'));
  });

  it('refuses another format version, naming both', () => {
    const b = bytes.slice();
    b[9] = 9;
    expect(() => replayHeaderDecode(b, 'old.rr')).toThrow(/old\.rr uses log format version 9; this detvm reads version 1 only/);
  });

  it('refuses a damaged or edited header', () => {
    expect(() => replayHeaderDecode(bytes.subarray(0, 30), 'cut.rr')).toThrow(/the log header is truncated/);
    const edited = new TextDecoder().decode(bytes.subarray(14)).replace('"smp":2', '"smp":3');
    const b = new Uint8Array([...bytes.subarray(0, 14), ...new TextEncoder().encode(edited)]);
    expect(() => replayHeaderDecode(b, 'ed.rr')).toThrow(/does not match its hash \(the file was edited or damaged\)/);
  });

  it('refuses another detvm version, configuration or image, saying which', () => {
    expect(() => replayHeaderCheck(header, 'x.rr', { detvm: '0.2.0' })).toThrow(
      'x.rr was recorded by detvm 0.1.0; this is detvm 0.2.0, and replays are exact only with the same version');
    expect(() => replayHeaderCheck(header, 'x.rr', { detvm: '0.2.0', allowOtherVersion: true })).not.toThrow();
    expect(() => replayHeaderCheck(header, 'x.rr', { config: { smp: 1, memory: 134217728, serial: 'null' } })).toThrow(
      'x.rr was recorded with another configuration (smp: log 2, now 1)');
    expect(() => replayHeaderCheck(header, 'x.rr', { imageHash: 'ffffffffffffffff' })).toThrow(
      "x.rr was recorded with guest image 'g.elf' (hash 0123456789abcdef); the image given now has hash ffffffffffffffff");
    expect(() => replayHeaderCheck(header, 'x.rr', { config: INIT.config, imageHash: '0123456789abcdef', detvm: '0.1.0' })).not.toThrow();
  });
});
