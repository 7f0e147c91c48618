// The live-mode HostClockSource (core/loop/clock.ts): monotonic time from process.hrtime and
// wall-clock time from Date. This is one of the two places detvm reads real time (the other is
// the live driver's waiting, host-io.ts). Monotonic values count from the source's creation and
// wall-clock values from `baseSec` (the whole second of creation), so both stay far below
// 2^53 ns whatever the host's uptime or date.

import type { HostClockSource } from '../loop/index.ts';

const NS_PER_MS = 1_000_000;
const MS_PER_SEC = 1000;

/** A HostClockSource reading the OS clocks. */
export function hostClockSourceCreate(): HostClockSource {
  const base = process.hrtime.bigint();
  const baseSec = Math.floor(Date.now() / MS_PER_SEC);
  return {
    baseSec,
    monotonicNs: () => Number(process.hrtime.bigint() - base),
    // Date has millisecond resolution; QEMU's HOST clock reads gettimeofday (microseconds).
    realtimeNs: () => (Date.now() - baseSec * MS_PER_SEC) * NS_PER_MS,
  };
}
