// Trace an HMP `cont` typed on a TCP monitor and print its call tree: from the main loop's
// poll through tcp_chr_read, the line editor and the command handler down to vm_start and the
// vCPU kicks. Everything runs in virtual time with an in-memory TCP client, so the output is
// the same on every run.
import { createMachine } from 'detvm';
import { memoryPeerConnect, memoryPeerSend } from 'detvm/chardev';
import { exportCallTree } from 'detvm/core/trace';

const vm = createMachine({
  kernel: 'guests/bin/demo.elf',
  monitors: ['tcp:127.0.0.1:4444,server=on,wait=off'],
  trace: 1,
});
const client = memoryPeerConnect(vm.kernel, '127.0.0.1:4444');
if (!client.ok) throw new Error(client.error);
memoryPeerSend(client.peer, 'stop\r');
vm.runFor(20_000_000);
const from = vm.trace.records().length;
memoryPeerSend(client.peer, 'cont\r');
vm.runFor(20_000_000);

// Print the main-loop iteration in which hmp_cont ran.
const recs = vm.trace.records().slice(from);
const at = recs.findIndex((r) => r.name === 'hmp_cont');
let start = at;
while (recs[start]!.name !== 'main_loop_wait' || recs[start]!.kind !== 'enter') start--;
let end = start;
for (let depth = 0; ; end++) {
  const r = recs[end]!;
  if (r.kind === 'enter') depth++;
  if (r.kind === 'exit' && --depth === 0) break;
}
console.log(exportCallTree(recs.slice(start, end + 1)));
console.log(`VM status: ${vm.kernel.runstate.current}; trace hash ${vm.trace.hash()}`);
