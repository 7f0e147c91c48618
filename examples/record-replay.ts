// Record a run, then replay it from the log alone. The recording is a virtual-mode machine whose
// outside world is a QMP client on an (in-memory) TCP socket: everything that client sends is
// logged with its position. The replay gets nothing but the log (and the same configuration),
// runs to its end, and produces the same trace hash, the same bytes to the client and the same
// machine state. (With the CLI: `-icount shift=0,rr=record,rrfile=run.log`, then
// `detvm replay run.log --check`.)
import { createMachine, type MachineConfig } from 'detvm';
import { memoryPeerConnect, memoryPeerSend, memoryPeerText } from 'detvm/chardev';

const config: MachineConfig = {
  kernel: 'guests/bin/demo.elf',
  smp: 2,
  qmp: ['tcp:127.0.0.1:4445,server=on,wait=off'],
  trace: 1,
};

// 1. Record: `record: {}` keeps the log in memory (`record: { file }` writes it as the run goes).
const rec = createMachine({ ...config, record: {} });
rec.runFor(200_000_000);
const client = memoryPeerConnect(rec.kernel, '127.0.0.1:4445');
if (!client.ok) throw new Error(client.error);
memoryPeerSend(client.peer, '{"execute":"qmp_capabilities"}\n{"execute":"stop"}\n');
rec.runFor(100_000_000);
memoryPeerSend(client.peer, '{"execute":"query-status"}\n{"execute":"cont"}\n');
rec.runFor(200_000_000);
const recorded = { hash: rec.trace.hash(), state: rec.replay!.stateHash(), qmp: memoryPeerText(client.peer) };
rec.close(); // ends the recording
const log = rec.replay!.log();
console.log(`recorded: ${log.length} bytes of log, trace hash ${recorded.hash}`);

// 2. Replay: the same configuration, the log instead of the client.
const play = createMachine({ ...config, replay: { log } });
const r = play.replay!.run();
console.log(`replayed to the ${r.stop} of the log at icount ${r.icount}: trace hash ${play.trace.hash()}`);
console.log(`same trace: ${play.trace.hash() === recorded.hash}`);
console.log(`same state: ${play.replay!.stateHash() === recorded.state}`);
console.log(`same bytes to the QMP client: ${play.replay!.output().map((o) => o.text).join('') === recorded.qmp}`);
console.log(`divergence: ${play.replay!.divergence() ?? 'none'}`);
console.log('\nwhat the QMP client received:');
console.log(recorded.qmp.trimEnd());
