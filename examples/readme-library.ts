// The library example from the README, kept runnable (the test suite runs it).
import { createMachine } from 'detvm';
import { timerNew, timerModNs, QEMU_CLOCK_REALTIME, SCALE_MS } from 'detvm/core/loop';

const vm = createMachine({ trace: 1, seed: 42 });
const t = timerNew(vm.kernel.loop.tlg, QEMU_CLOCK_REALTIME, 1, 'my_timer', () => console.log('fired'));
timerModNs(t, 5 * SCALE_MS);
vm.runFor(10 * SCALE_MS); // 10 ms of virtual time, no real time spent
console.log(vm.trace.callTree()); // what the loop did, as an indented call tree
console.log(vm.trace.hash()); // identical on every run
