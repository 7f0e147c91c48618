// A first look at detvm's kernel loop: a machine with a few timers and bottom halves, run in virtual
// time with tracing on; prints the call tree of the first iterations and the trace hash, which is
// the same on every run. (npm start runs the full machine.)
import { createMachine } from 'detvm';
import { exportCallTree } from 'detvm/core/trace';
import {
  timerNew, timerModNs, aioBhNew, qemuBhSchedule, QEMU_CLOCK_REALTIME, SCALE_MS,
} from 'detvm/core/loop';

// -S: the vCPUs stay stopped, so only the kernel loop runs.
const vm = createMachine({ trace: 1, seed: 1, startPaused: true });
const k = vm.kernel;
let ticks = 0;
const tick = timerNew(k.loop.tlg, QEMU_CLOCK_REALTIME, SCALE_MS, 'demo_tick', () => {
  ticks++;
  qemuBhSchedule(report);
  if (ticks < 3) timerModNs(tick, k.clocks.simNs + 100 * SCALE_MS);
});
const report = aioBhNew(k.loop.aio, 'demo_report_bh', () => {
  console.log(`tick ${ticks} at ${k.clocks.simNs / SCALE_MS} ms of virtual time`);
});
timerModNs(tick, 100 * SCALE_MS);
vm.runFor(1000 * SCALE_MS);
console.log('\ncall tree of the first three iterations:');
const recs = vm.trace.records();
const end = recs.findIndex((r) => r.kind === 'enter' && r.name === 'main_loop_wait' && r.args?.['iteration'] === 4);
console.log(exportCallTree(recs.slice(0, end)));
console.log(`trace: ${recs.length} records, hash ${vm.trace.hash()} (identical on every run)`);
