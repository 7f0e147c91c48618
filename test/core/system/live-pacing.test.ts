// Live mode keeps guest time with real time while the guest sleeps (icount warp, sleep=on): the
// demo guest, one tick per 100 ms of VIRTUAL time, must print a tick per 100 ms of host time
// when a driver waits exactly what the loop asks (loopWouldSpin, then lastTimeoutNs). Before
// the fix the driver slept one more full deadline per tick (200 ms per tick): the warp started
// one poll late, and a warp that fell short left the next wait at the stale full timeout.
// Method: a live-mode machine on a fake host clock that the test driver advances by each wait,
// and by a fixed cost per iteration, so the result is exact and independent of the host.
import { describe, expect, it } from 'vitest';
import { createMachine } from '../../../index.ts';
import { loopStep, loopWouldSpin, type HostClockSource } from '../../../core/loop/index.ts';
import { memoryIoCreate } from '../../../chardev/index.ts';

/** Host time a main-loop iteration costs in this model (ns). */
const ITERATION_NS = 50_000;

function pacedRun(waitShortfallNs: number): number[] {
  let hostNs = 0;
  const clock: HostClockSource = { monotonicNs: () => hostNs, realtimeNs: () => hostNs, baseSec: 1_767_225_600 };
  const vm = createMachine({
    kernel: 'guests/bin/demo.elf', memory: '16M', clock: 'live', host: { clock, io: (m) => memoryIoCreate(m) },
  });
  const m = vm.kernel;
  const tickAt: number[] = [];
  let seen = 0;
  while (tickAt.length < 20) {
    loopStep(m);
    hostNs += ITERATION_NS;
    const ticks = vm.console.text().split('tick').length - 1;
    for (; seen < ticks; seen++) tickAt.push(hostNs);
    // The driver of bin/live.ts: wait for the poll's timeout unless the next poll would not
    // sleep. A real timer may fire a little early (Node's timers do): `waitShortfallNs`.
    if (!loopWouldSpin(m) && m.loop.lastTimeoutNs > 0) hostNs += Math.max(1, m.loop.lastTimeoutNs - waitShortfallNs);
  }
  vm.close();
  return tickAt.slice(1).map((t, i) => t - tickAt[i]!);
}

describe('live mode: guest time keeps pace with host time while the guest sleeps', () => {
  it('one tick per 100 ms of host time, exact waits', () => {
    for (const gap of pacedRun(0)) {
      expect(gap).toBeGreaterThanOrEqual(100_000_000);
      expect(gap).toBeLessThan(101_000_000);
    }
  });

  it('one tick per 100 ms of host time when the host timer fires early', () => {
    for (const gap of pacedRun(400_000)) {
      expect(gap).toBeGreaterThanOrEqual(100_000_000);
      expect(gap).toBeLessThan(101_000_000);
    }
  });
});
