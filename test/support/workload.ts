// A seeded random workload for the kernel loop: timers on every clock (some re-arming, some
// deleting others), bottom halves (plain, idle, one-shot, cancelled) and host input on a virtual
// fd read by a source. Everything is derived from the seed, so two runs must trace identically.
import {
  type LoopMachine, loopMachineCreate, timerNew, timerModNs, timerDel, aioBhNew, qemuBhSchedule,
  qemuBhScheduleIdle, qemuBhCancel, aioBhScheduleOneshot, gSourceAttach, G_PRIORITY_DEFAULT, vfdOpen,
  vfdRead, vfdRevents, G_IO_IN, hostInputAt, runFor, qemuClockGetNs, QEMU_CLOCK_VIRTUAL, cpuEnableTicks,
  qemuClockEnable, type ClockType, type QEMUTimer,
} from '../../core/loop/index.ts';
import { type PrngState, prngCreate, prngInt } from '../../core/util/index.ts';
import type { TraceLevel } from '../../core/trace/index.ts';

export interface WorkloadResult {
  m: LoopMachine;
  fired: number;
}

/** Build and run the workload for `seed`, for `durationNs` of simulated time. */
export function runWorkload(seed: number, opts: { level?: TraceLevel; durationNs?: number; retain?: boolean } = {}): WorkloadResult {
  const m = loopMachineCreate({ seed, trace: { level: opts.level ?? 1, retain: opts.retain ?? false } });
  const rng: PrngState = prngCreate(seed ^ 0x5eed);
  let fired = 0;
  cpuEnableTicks(m.clocks);
  qemuClockEnable(m, QEMU_CLOCK_VIRTUAL, true);
  const timers: QEMUTimer[] = [];
  const nTimers = 4 + prngInt(rng, 12);
  for (let i = 0; i < nTimers; i++) {
    const type = prngInt(rng, 4) as ClockType;
    const onAio = prngInt(rng, 3) === 0;
    const tlg = onAio ? m.loop.aio.tlg : m.loop.tlg;
    const t: QEMUTimer = timerNew(tlg, type, 1, `timer${i}`, () => {
      fired++;
      const r = prngInt(rng, 10);
      if (r < 6) timerModNs(t, qemuClockGetNs(m.clocks, type) + 1 + prngInt(rng, 2_000_000));
      else if (r < 7) timerDel(timers[prngInt(rng, timers.length)]!);
      else if (r < 9) qemuBhSchedule(bhs[prngInt(rng, bhs.length)]!);
      else aioBhScheduleOneshot(m.loop.aio, `oneshot${i}`, () => fired++);
    });
    timers.push(t);
  }
  const bhs = Array.from({ length: 3 + prngInt(rng, 5) }, (_, i) =>
    aioBhNew(m.loop.aio, `bh${i}`, () => {
      fired++;
      const r = prngInt(rng, 8);
      const t = timers[prngInt(rng, timers.length)]!;
      if (r < 4) timerModNs(t, qemuClockGetNs(m.clocks, t.list.type) + prngInt(rng, 500_000));
      else if (r < 5) qemuBhScheduleIdle(bhs[prngInt(rng, bhs.length)]!);
      else if (r < 6) qemuBhCancel(bhs[prngInt(rng, bhs.length)]!);
    }));
  for (const t of timers) timerModNs(t, qemuClockGetNs(m.clocks, t.list.type) + prngInt(rng, 1_000_000));
  const fd = vfdOpen(m.fdt, 'peer', 'stream');
  gSourceAttach(m.loop.sources, 'peer_read', G_PRIORITY_DEFAULT, {
    check: () => (vfdRevents(fd) & G_IO_IN) !== 0,
    dispatch: () => {
      const n = vfdRead(fd, 1 + prngInt(rng, 7)).length;
      fired += n;
    },
  });
  const duration = opts.durationNs ?? 20_000_000;
  for (let i = 0, n = prngInt(rng, 20); i < n; i++) {
    const bytes = new Uint8Array(1 + prngInt(rng, 30)).map(() => prngInt(rng, 256));
    hostInputAt(m.fdt, prngInt(rng, duration), { kind: 'data', fd: fd.id, data: bytes });
  }
  runFor(m, duration);
  return { m, fired };
}
