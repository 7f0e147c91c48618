// The library example from the README, kept runnable (the test suite runs it).
import { createMachine } from 'detvm';

const vm = createMachine({ kernel: 'guests/bin/demo.elf', smp: 2 });
vm.runFor(250_000_000); // 250 ms of guest time, no real time spent
vm.qmp('stop'); // QMP commands return their result or throw
console.log(vm.hmp('info status')); // "VM status: paused"
vm.qmp('cont');
vm.runFor(100_000_000);
console.log(vm.console.text()); // what the guest printed
