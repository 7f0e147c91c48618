// Live pre-copy on the RAM handler (core/migration/ram.ts) as the migration driver will run it:
// setup, rate-limited iterations while the guest keeps writing (dirty pages are found through
// core/memory's dirty log and sent again), a pending estimate that decides convergence, then
// stop-and-copy. The stream goes through a writer sink straight into an incremental loader, as
// over a socket. Method: seeded guest writes between iterations; exact end-state comparison.
import { describe, expect, it } from 'vitest';
import { addressSpaceWrite, RAM_BASE } from '../../../core/memory/index.ts';
import {
  loadvmCommit, loadvmCreate, loadvmFeed, qemuFclose, qemuFileResetRateLimit, qemuFileSetRateLimit,
  qemuFileWriterCreate, qemuSavevmStateCleanup, qemuSavevmStateCompletePrecopy,
  qemuSavevmStateHeader, qemuSavevmStateIterate, qemuSavevmStatePending, qemuSavevmStateSetup,
  ramBytesRemaining, ramBytesTotal,
} from '../../../core/migration/index.ts';
import { prngCreate, prngInt, prngNextU32, type PrngState } from '../../../core/util/index.ts';
import { machineHash, makeTestMachine, randomizeMachine, type TestMachine } from './fixture.ts';

const RAM = 256 * 1024;

/** The guest runs a little: `n` stores of 8 bytes to random pages. */
function guestRuns(tm: TestMachine, rng: PrngState, n: number): void {
  for (let i = 0; i < n; i++) {
    const page = prngInt(rng, RAM / 4096);
    const bytes = Uint8Array.from({ length: 8 }, () => prngNextU32(rng) & 0xff);
    addressSpaceWrite(tm.as, RAM_BASE + page * 4096 + 8 * prngInt(rng, 512), bytes);
  }
}

describe('live pre-copy', () => {
  it('re-sends what the guest dirties, converges, ends equal to the source (seeds 1-8)', () => {
    for (let seed = 1; seed <= 8; seed++) {
      const a = makeTestMachine(RAM);
      randomizeMachine(a, seed);
      const b = makeTestMachine(RAM);
      const ls = loadvmCreate(b.sv);
      // The sink's buffer is reused by the writer: the loader gets a copy.
      const f = qemuFileWriterCreate((bytes) => (loadvmFeed(ls, bytes.slice()), 0));
      const rng = prngCreate(seed);
      qemuSavevmStateHeader(a.sv, f);
      qemuSavevmStateSetup(a.sv, f);
      expect(ramBytesRemaining(a.rs)).toBe(ramBytesTotal(a.rs));
      const threshold = 6 * 4096; // bandwidth × downtime limit
      let iterations = 0;
      for (;;) {
        guestRuns(a, rng, 4);
        if (qemuSavevmStatePending(a.sv, threshold) < threshold) break;
        qemuFileResetRateLimit(f);
        qemuFileSetRateLimit(f, 16 * 1024);
        qemuSavevmStateIterate(a.sv, f);
        expect(f.rateLimitUsed, `seed ${seed}`).toBeLessThan(16 * 1024 + 4096 + 64);
        expect(++iterations, `seed ${seed}: no convergence`).toBeLessThan(200);
      }
      expect(iterations).toBeGreaterThan(3);
      // Stop and copy: the guest no longer runs.
      qemuSavevmStateCompletePrecopy(a.sv, f);
      qemuSavevmStateCleanup(a.sv);
      expect(qemuFclose(f)).toBe(0);
      expect(loadvmFeed(ls, null), `seed ${seed}`).toBe('loaded');
      loadvmCommit(ls);
      b.dev.derivedCache = a.dev.derivedCache; // not described, so not migrated
      expect(machineHash(b, false), `seed ${seed}`).toBe(machineHash(a, false));
      const c = a.rs.counters;
      // Pages were sent again.
      expect(c.normal + c.duplicate).toBeGreaterThan(ramBytesTotal(a.rs) / 4096);

      expect(c.dirtySyncCount).toBeGreaterThan(2);
      expect(c.transferred).toBeGreaterThan(c.normalBytes);
      expect(a.as.dirtyLogging).toBe(false);
    }
  });

  it('reports no pending bytes once everything is sent and the guest is idle', () => {
    const a = makeTestMachine(RAM);
    randomizeMachine(a, 9);
    const f = qemuFileWriterCreate(() => 0);
    qemuSavevmStateHeader(a.sv, f);
    qemuSavevmStateSetup(a.sv, f);
    expect(qemuSavevmStateIterate(a.sv, f)).toBe(1);
    expect(qemuSavevmStatePending(a.sv, 4096)).toBe(0);
    guestRuns(a, prngCreate(9), 1);
    expect(qemuSavevmStatePending(a.sv, 0)).toBe(0); // not below the threshold: no sync
    expect(qemuSavevmStatePending(a.sv, 8192)).toBe(4096); // below: synced, the dirty page counts
    qemuSavevmStateCleanup(a.sv);
  });
});
