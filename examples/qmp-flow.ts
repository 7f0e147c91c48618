// A deterministic test of a QMP client flow against detvm: boot the demo guest, stop it, check
// the status, resume it, and print what the guest and the monitor said. Same output every run.
import { createMachine } from 'detvm';

const vm = createMachine({ kernel: 'guests/bin/demo.elf', smp: 2 });
vm.events.on('event', (e) => console.log(`event ${e.event} at ${e.timestamp.seconds}.${String(e.timestamp.microseconds).padStart(6, '0')}`));
vm.runFor(250_000_000); // 250 ms of guest time
console.log(vm.qmp('query-status'));
vm.qmp('stop');
console.log(vm.qmp('query-status'));
console.log(vm.hmp('info status').trimEnd());
vm.qmp('cont');
vm.runFor(100_000_000);
console.log(vm.console.text().trimEnd());
