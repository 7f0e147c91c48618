// QEMUFile (core/migration/qemu-file.ts): big-endian puts and gets of every width, counted
// strings, a writer flushing to a sink, rate limiting, and a reader fed in chunks that asks for
// more bytes (NEED_MORE) until the stream is final, then behaves as QEMU's (zeros, -EIO).
// Method: exact bytes, and seeded chunkings of one stream.
import { describe, expect, it } from 'vitest';
import {
  QEMU_FILE_NEED_MORE, qemuFclose, qemuFileGetBuffer, qemuFileGetChunks, qemuFilePush,
  qemuFileRateLimit, qemuFileReaderCreate, qemuFileRelease, qemuFileResetRateLimit, qemuFileRewind,
  qemuFileSetEof, qemuFileSetRateLimit, qemuFileWriterCreate, qemuGetBe16, qemuGetBe32, qemuGetBe64,
  qemuGetBuffer, qemuGetBufferView, qemuGetByte, qemuGetCountedString, qemuPeekBuffer, qemuPeekByte,
  qemuPutBe16, qemuPutBe32, qemuPutBe64, qemuPutBuffer, qemuPutByte, qemuPutCountedString,
  IO_BUF_SIZE, type QEMUFileReader,
} from '../../../core/migration/index.ts';
import { prngCreate, prngInt } from '../../../core/util/index.ts';

function sample(): Uint8Array {
  const f = qemuFileWriterCreate();
  qemuPutByte(f, 0x1ab);
  qemuPutBe16(f, 0xbeef);
  qemuPutBe32(f, 0xdeadbeef);
  qemuPutBe32(f, -1);
  qemuPutBe64(f, -1);
  qemuPutBe64(f, Number.MAX_SAFE_INTEGER);
  qemuPutBe64(f, 0xfedcba9876543210n);
  qemuPutBe64(f, -2n);
  qemuPutCountedString(f, 'riscv_virt_board.ram');
  qemuPutBuffer(f, Uint8Array.from([1, 2, 3]));
  return qemuFileGetBuffer(f).slice();
}

function readSample(f: QEMUFileReader): unknown[] {
  return [
    qemuGetByte(f), qemuGetBe16(f), qemuGetBe32(f), qemuGetBe32(f), qemuGetBe64(f), qemuGetBe64(f),
    qemuGetBe64(f),
    qemuGetBe64(f), qemuGetCountedString(f), Array.from(qemuGetBuffer(f, 3)),
  ];
}

const SAMPLE_VALUES = [
  0xab, 0xbeef, 0xdeadbeef, 0xffffffff, 0xffffffffffffffffn, BigInt(Number.MAX_SAFE_INTEGER),
  0xfedcba9876543210n,
  0xfffffffffffffffen, 'riscv_virt_board.ram', [1, 2, 3],
];

describe('QEMUFile writer', () => {
  it('puts big-endian values of every width; 64-bit as numbers or bigints', () => {
    const b = sample();
    expect(Array.from(b.subarray(0, 15)))
      .toEqual([
        0xab, 0xbe, 0xef, 0xde, 0xad, 0xbe, 0xef, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      ]);
    expect(b[43]).toBe(20);
    expect(b.length).toBe(1 + 2 + 4 + 4 + 32 + 21 + 3);
  });

  it('asserts on an unsafe 64-bit number and on a counted string over 255 bytes', () => {
    const f = qemuFileWriterCreate();
    expect(() => qemuPutBe64(f, 2 ** 60)).toThrow(/not a safe integer/);
    expect(() => qemuPutCountedString(f, 'x'.repeat(256))).toThrow(/max 255/);
  });

  it('hands IO_BUF_SIZE buffers to its sink, in order, and counts every byte', () => {
    const out: number[] = [];
    const sizes: number[] = [];
    const f = qemuFileWriterCreate((bytes) => {
      sizes.push(bytes.length);
      out.push(...bytes);
      return 0;
    });
    const page = Uint8Array.from({ length: 4096 }, (_, i) => i & 0xff);
    for (let i = 0; i < 20; i++) {
      qemuPutBe32(f, i);
      qemuPutBuffer(f, page);
    }
    expect(qemuFclose(f)).toBe(0);
    expect(f.transferred).toBe(20 * 4100);
    expect(out.length).toBe(20 * 4100);
    expect(sizes.every((s) => s >= IO_BUF_SIZE || s === sizes.at(-1))).toBe(true);
    expect(out.slice(4100, 4104)).toEqual([0, 0, 0, 1]);
  });

  it('without a sink keeps every byte in segments, joined once on request', () => {
    const f = qemuFileWriterCreate();
    const page = Uint8Array.from({ length: 4096 }, (_, i) => (i * 13) & 0xff);
    for (let i = 0; i < 600; i++) {
      qemuPutBe16(f, i);
      qemuPutBuffer(f, page);
    }
    const chunks = qemuFileGetChunks(f);
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks.reduce((n, c) => n + c.length, 0)).toBe(600 * 4098);
    const all = qemuFileGetBuffer(f);
    expect(all.length).toBe(600 * 4098);
    expect(Array.from(all.subarray(599 * 4098, 599 * 4098 + 4))).toEqual([2, 0x57, 0, 13]);
    expect(qemuFileGetBuffer(f).buffer).toBe(all.buffer); // joined once
  });

  it('keeps the first sink error and stops writing', () => {
    let calls = 0;
    const f = qemuFileWriterCreate(() => (++calls === 1 ? -32 : 0));
    qemuPutBuffer(f, new Uint8Array(IO_BUF_SIZE + 10));
    qemuPutBuffer(f, new Uint8Array(IO_BUF_SIZE + 10));
    expect(qemuFclose(f)).toBe(-32);
    expect(calls).toBe(1);
  });

  it('rate-limits: true once more than the period\'s budget was put, until reset', () => {
    const f = qemuFileWriterCreate();
    expect(qemuFileRateLimit(f)).toBe(false);
    qemuFileSetRateLimit(f, 100);
    qemuPutBuffer(f, new Uint8Array(100));
    expect(qemuFileRateLimit(f)).toBe(false);
    qemuPutByte(f, 0);
    expect(qemuFileRateLimit(f)).toBe(true);
    qemuFileResetRateLimit(f);
    expect(qemuFileRateLimit(f)).toBe(false);
  });
});

describe('QEMUFile reader', () => {
  it('reads back what the writer put', () => {
    expect(readSample(qemuFileReaderCreate(sample()))).toEqual(SAMPLE_VALUES);
  });

  it('past the end of a final stream reads zeros and sets -EIO, as QEMU does', () => {
    const f = qemuFileReaderCreate(Uint8Array.from([0x12, 0x34]));
    expect(qemuGetBe32(f)).toBe(0x12340000);
    expect(f.error).toBe(-5);
    expect(qemuGetByte(f)).toBe(0);
    expect(qemuGetBuffer(f, 10).length).toBe(0);
    expect(qemuGetCountedString(qemuFileReaderCreate(Uint8Array.from([3, 0x61]))) ).toBeNull();
    expect(qemuGetCountedString(qemuFileReaderCreate(Uint8Array.from([0])))).toBeNull();
  });

  it('peeks without consuming; a peek past the end of a final stream reads 0 and sets -EIO', () => {
    const f = qemuFileReaderCreate(Uint8Array.from([5, 3, 0x61, 0x62, 0x63]));
    expect(qemuPeekByte(f, 0)).toBe(5);
    expect(Array.from(qemuPeekBuffer(f, 3, 2))).toEqual([0x61, 0x62, 0x63]);
    expect(qemuGetByte(f)).toBe(5);
    expect(qemuPeekByte(f, 9)).toBe(0);
    expect(f.error).toBe(-5);
  });

  it('throws NEED_MORE while the stream may grow; any chunking reads the same (seeds 1-50)', () => {
    const whole = sample();
    for (let seed = 1; seed <= 50; seed++) {
      const rng = prngCreate(seed);
      const f = qemuFileReaderCreate(null, false);
      let fed = 0;
      let got: unknown[] | null = null;
      for (let guard = 0; got === null; guard++) {
        expect(guard, `seed ${seed}`).toBeLessThan(1000);
        try {
          got = readSample(f);
        } catch (e) {
          expect(e).toBe(QEMU_FILE_NEED_MORE);
          qemuFileRewind(f, 0);
          const n = Math.min(whole.length - fed, 1 + prngInt(rng, 9));
          qemuFilePush(f, whole.subarray(fed, fed + n));
          fed += n;
        }
      }
      expect(got, `seed ${seed}`).toEqual(SAMPLE_VALUES);
      expect(f.error).toBe(0);
    }
  });

  it('returns views into chunks when a buffer lies in one, copies when it spans two', () => {
    const a = Uint8Array.from([1, 2, 3, 4]);
    const f = qemuFileReaderCreate(null, false);
    qemuFilePush(f, a);
    qemuFilePush(f, Uint8Array.from([5, 6]));
    qemuFileSetEof(f);
    const v = qemuGetBufferView(f, 3);
    expect(v.buffer).toBe(a.buffer);
    const w = qemuGetBufferView(f, 3);
    expect(Array.from(w)).toEqual([4, 5, 6]);
    expect(w.buffer).not.toBe(a.buffer);
  });

  it('releases consumed chunks, so a long stream does not accumulate', () => {
    const f = qemuFileReaderCreate(null, false);
    for (let i = 0; i < 1000; i++) {
      qemuFilePush(f, new Uint8Array(100).fill(i & 0xff));
      qemuGetBuffer(f, 100);
      qemuFileRelease(f);
    }
    expect(f.chunks.length).toBeLessThanOrEqual(1);
    expect(f.pos).toBe(100_000);
    expect(() => qemuFileRewind(f, 0)).toThrow(/outside/);
  });
});
