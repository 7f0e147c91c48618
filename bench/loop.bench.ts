// Kernel loop benchmarks (issue 2): 100,000 timers at seeded random deadlines run to completion
// on detvm's virtual clock versus @sinonjs/fake-timers on the same workload in the same process;
// bottom-half schedule+dispatch throughput.
import FakeTimers from '@sinonjs/fake-timers';
import {
  loopMachineCreate, timerNew, timerModNs, runFor, aioBhNew, qemuBhSchedule, mainLoopWait, QEMU_CLOCK_REALTIME,
  type QEMUBH,
} from '../core/loop/index.ts';
import { prngCreate, prngInt } from '../core/util/index.ts';
import { type BenchRow, timeMs } from './harness.ts';

const N_TIMERS = Number(process.env.BENCH_TIMERS ?? 100_000);
const MAX_DELAY_MS = 10_000;

function deadlines(seed: number): number[] {
  const rng = prngCreate(seed);
  return Array.from({ length: N_TIMERS }, () => 1 + prngInt(rng, MAX_DELAY_MS));
}

async function detvmTimers(ds: number[]): Promise<{ ms: number; fired: number }> {
  let fired = 0;
  const ms = await timeMs(() => {
    const m = loopMachineCreate();
    const cb = (): void => {
      fired++;
    };
    for (let i = 0; i < ds.length; i++) {
      const t = timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, 'bench', cb);
      timerModNs(t, ds[i]! * 1_000_000);
    }
    runFor(m, (MAX_DELAY_MS + 1) * 1_000_000);
  });
  return { ms, fired };
}

async function fakeTimers(ds: number[]): Promise<{ ms: number; fired: number }> {
  let fired = 0;
  const ms = await timeMs(() => {
    const clock = FakeTimers.createClock(0, Infinity);
    const cb = (): void => {
      fired++;
    };
    for (let i = 0; i < ds.length; i++) clock.setTimeout(cb, ds[i]!);
    clock.runAll();
  });
  return { ms, fired };
}

async function bhThroughput(): Promise<{ perSec: number; perSecPingPong: number }> {
  const m = loopMachineCreate();
  const BATCH = 1000;
  const ROUNDS = 2000;
  let ran = 0;
  const cb = (): void => {
    ran++;
  };
  const bhs: QEMUBH[] = Array.from({ length: BATCH }, () => aioBhNew(m.loop.aio, 'bench_bh', cb));
  const ms = await timeMs(() => {
    for (let r = 0; r < ROUNDS; r++) {
      for (let i = 0; i < BATCH; i++) qemuBhSchedule(bhs[i]!);
      mainLoopWait(m, false);
    }
  });
  if (ran !== BATCH * ROUNDS) throw new Error(`bh bench: ran ${ran}, expected ${BATCH * ROUNDS}`);
  // One BH rescheduling itself: one schedule+dispatch per main-loop iteration.
  const m2 = loopMachineCreate();
  let n = 0;
  const ITER = 300_000;
  const self: QEMUBH = aioBhNew(m2.loop.aio, 'ping', () => {
    if (++n < ITER) qemuBhSchedule(self);
  });
  const ms2 = await timeMs(() => {
    qemuBhSchedule(self);
    while (n < ITER) mainLoopWait(m2, false);
  });
  return { perSec: (BATCH * ROUNDS) / (ms / 1000), perSecPingPong: ITER / (ms2 / 1000) };
}

export async function run(): Promise<BenchRow[]> {
  const ds = deadlines(12345);
  // Each contender runs its warm-ups and then 7 measured runs back to back (not interleaved, so
  // neither pays for the other's garbage); the figure is the median.
  const measure = async (fn: (ds: number[]) => Promise<{ ms: number; fired: number }>): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < 10; i++) {
      const r = await fn(ds);
      if (r.fired !== N_TIMERS) throw new Error(`timer bench fired ${r.fired} of ${N_TIMERS}`);
      if (i >= 3) out.push(r.ms);
    }
    return out;
  };
  const d = await measure(detvmTimers);
  const f = await measure(fakeTimers);
  const med = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
  const dm = med(d);
  const fm = med(f);
  const bh = await bhThroughput();
  return [
    { name: `${N_TIMERS} timers, detvm virtual clock`, value: dm, unit: 'ms' },
    { name: `${N_TIMERS} timers, @sinonjs/fake-timers`, value: fm, unit: 'ms' },
    { name: 'timers: fake-timers / detvm', value: fm / dm, unit: 'x', target: '>= 10x', pass: fm / dm >= 10 },
    { name: 'BH schedule+dispatch (batches of 1000)', value: bh.perSec / 1e6, unit: 'M/s', target: '>= 5 M/s', pass: bh.perSec >= 5e6 },
    { name: 'BH schedule+dispatch (one per iteration)', value: bh.perSecPingPong / 1e6, unit: 'M/s', note: 'a full main_loop_wait per BH' },
  ];
}
