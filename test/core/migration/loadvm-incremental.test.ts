// The loader fed in pieces (core/migration/loadvm.ts), as a socket delivers a stream: any
// chunking gives the same outcome and the same machine as loading the whole buffer, the loader
// waits (never fails) while bytes are missing, fails as soon as a bad record is complete, and
// keeps no more than the unconsumed bytes. Method: seeded chunk sizes over fixture streams.
import { describe, expect, it } from 'vitest';
import {
  analyzeMigrationStream, loadvmCommit, loadvmCreate, loadvmFeed, qemuFileGetBuffer,
  qemuFileWriterCreate, qemuLoadvmState, qemuSavevmState, savevmUnregister,
} from '../../../core/migration/index.ts';
import { prngCreate, prngInt } from '../../../core/util/index.ts';
import { machineHash, makeTestMachine, randomizeMachine } from './fixture.ts';

function stream(seed: number): Uint8Array {
  const a = makeTestMachine();
  randomizeMachine(a, seed);
  const f = qemuFileWriterCreate();
  expect(qemuSavevmState(a.sv, f)).toBeNull();
  return qemuFileGetBuffer(f).slice();
}

describe('incremental loadvm', () => {
  it('gives the same machine for any chunking as for the whole buffer (seeds 1-25)', () => {
    for (let seed = 1; seed <= 25; seed++) {
      const s = stream(seed);
      const whole = makeTestMachine();
      expect(qemuLoadvmState(whole.sv, s).ok).toBe(true);
      const b = makeTestMachine();
      const ls = loadvmCreate(b.sv);
      const rng = prngCreate(seed);
      const maxChunk = [1, 7, 100, 5000][seed % 4]!;
      let fed = 0;
      while (fed < s.length) {
        const n = Math.min(s.length - fed, 1 + prngInt(rng, maxChunk));
        // Copies: the loader keeps views of what it is given.
        const phase = loadvmFeed(ls, s.slice(fed, fed + n));
        fed += n;
        if (fed < s.length) expect(phase, `seed ${seed} at ${fed}`).not.toBe('failed');
      }
      expect(loadvmFeed(ls, null), `seed ${seed}`).toBe('loaded');
      loadvmCommit(ls);
      expect(machineHash(b), `seed ${seed}`).toBe(machineHash(whole));
    }
  });

  it('reaches `loaded` on the last vmdesc byte, before the peer closes', () => {
    const s = stream(40);
    const ls = loadvmCreate(makeTestMachine().sv);
    expect(loadvmFeed(ls, s.slice(0, s.length - 1))).toBe('vmdesc-skip');
    expect(loadvmFeed(ls, s.slice(s.length - 1))).toBe('loaded');
  });

  it('fails as soon as a bad section header is complete, without waiting for the rest', () => {
    const s = stream(41);
    const b = makeTestMachine();
    savevmUnregister(b.sv, b.sv.handlers.find((se) => se.idstr === 'globalstate')!);
    const ls = loadvmCreate(b.sv);
    let failedAt = -1;
    for (let i = 0; i < s.length && failedAt < 0; i++) {
      if (loadvmFeed(ls, s.slice(i, i + 1)) === 'failed') failedAt = i;
    }
    expect(ls.failure!.messages[0])
      .toMatch(/^Unknown savevm section or instance 'globalstate' 0\./);
    // The FULL header is type, id, counted "globalstate", instance, version: 25 bytes; the
    // loader fails on its last byte.
    const line = analyzeMigrationStream(s).lines.find((l) => l.includes("name='globalstate'"))!;
    expect(failedAt).toBe(parseInt(line.trim().slice(3, 9), 16) + 24);
  });

  it('keeps only unconsumed bytes while a long RAM section streams in', () => {
    const s = stream(42);
    const ls = loadvmCreate(makeTestMachine().sv);
    let maxChunks = 0;
    for (let i = 0; i < s.length; i += 64) {
      loadvmFeed(ls, s.slice(i, i + 64));
      maxChunks = Math.max(maxChunks, ls.f.chunks.length);
    }
    expect(ls.phase).toBe('loaded');
    // A page record (4 KiB + header) may span 65 chunks of 64 bytes; nothing else is held.
    expect(maxChunks).toBeLessThanOrEqual(66);
  });
});
