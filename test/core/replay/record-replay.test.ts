// Record and replay in virtual mode (library machines): a two-hart printing guest with HMP on a
// multiplexed stdio and QMP from an in-memory socket peer, recorded, then replayed from the log
// alone: same trace hash, same terminal and socket bytes, same state. Altered logs: a changed
// input byte is reported at the iteration where the replay's trace first differs from the
// recording's; a cut log replays up to the cut; a mismatched configuration is refused. Method:
// drive the recording with memory-stdio input and peer bytes at chosen virtual times; compare.
import { describe, expect, it } from 'vitest';
import { createMachine, type DetvmMachine, type MachineConfig, type TraceRecord } from '../../../index.ts';
import {
  chardevMemoryIo, memoryPeerConnect, memoryPeerSend, memoryPeerText, memoryStdioInput, memoryStdioText,
} from '../../../chardev/index.ts';

const CFG: MachineConfig = {
  kernel: 'guests/bin/demo.elf', smp: 2, serial: 'mon:stdio', qmp: ['tcp:127.0.0.1:4444,server=on,wait=off'], trace: 1,
};

interface Recording {
  log: Uint8Array;
  traceHash: string;
  records: TraceRecord[];
  terminal: string;
  qmp: string;
  state: string;
}

/** A recorded session: HMP commands on the terminal, QMP commands from a socket peer. */
function record(cfg: MachineConfig = CFG): Recording {
  const vm = createMachine({ ...cfg, record: {} });
  const st = chardevMemoryIo(vm.kernel).stdio;
  vm.runFor(250_000_000);
  memoryStdioInput(st, '\x01c');
  vm.runFor(50_000_000);
  memoryStdioInput(st, 'info status\r');
  vm.runFor(100_000_000);
  const pr = memoryPeerConnect(vm.kernel, '127.0.0.1:4444');
  if (!pr.ok) throw new Error(pr.error);
  memoryPeerSend(pr.peer, '{"execute":"qmp_capabilities"}\n{"execute":"query-replay"}\n');
  vm.runFor(100_000_000);
  memoryStdioInput(st, 'info replay\rstop\r');
  vm.runFor(100_000_000);
  memoryPeerSend(pr.peer, '{"execute":"cont"}\n');
  vm.runFor(200_000_000);
  const out: Recording = {
    log: new Uint8Array(), traceHash: vm.trace.hash(), records: [...vm.trace.records()], terminal: memoryStdioText(st),
    qmp: memoryPeerText(pr.peer), state: vm.replay!.stateHash(),
  };
  vm.close();
  out.log = vm.replay!.log();
  return out;
}

function replay(log: Uint8Array, cfg: MachineConfig = CFG): DetvmMachine {
  return createMachine({ ...cfg, replay: { log } });
}

/** The iteration of the main_loop_wait that contains record `i`. */
function iterationOf(recs: readonly TraceRecord[], i: number): number {
  for (let j = i; j >= 0; j--) {
    const r = recs[j]!;
    if (r.kind === 'enter' && r.name === 'main_loop_wait') return Number(r.args!['iteration']);
  }
  return 0;
}

function firstDifference(a: readonly TraceRecord[], b: readonly TraceRecord[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i]!.hash !== b[i]!.hash) return i;
  return -1;
}

describe('record/replay in virtual mode', () => {
  const rec = record();

  it('records the monitor traffic it replays', () => {
    expect(rec.terminal).toContain("Recording execution 'memory': instruction count = ");
    expect(rec.terminal).toContain('VM status: running');
    expect(rec.qmp).toContain('"mode": "record"');
    expect(rec.terminal).toMatch(/tick \d+ hart 1/);
  });

  it('replays with the same trace, terminal bytes, socket bytes and state', () => {
    const vm = replay(rec.log);
    const r = vm.replay!.run();
    expect(r.stop).toBe('end');
    expect(vm.replay!.divergence()).toBeNull();
    expect(vm.trace.hash()).toBe(rec.traceHash);
    expect(memoryStdioText(chardevMemoryIo(vm.kernel).stdio)).toBe(rec.terminal);
    expect(vm.replay!.output().map((o) => o.text)).toEqual([rec.qmp]);
    expect(vm.replay!.stateHash()).toBe(rec.state);
  });

  it('replays with another trace level (tracing observes, it does not decide)', () => {
    const vm = createMachine({ ...CFG, trace: 0, replay: { log: rec.log } });
    expect(vm.replay!.run().stop).toBe('end');
    expect(vm.replay!.divergence()).toBeNull();
    expect(memoryStdioText(chardevMemoryIo(vm.kernel).stdio)).toBe(rec.terminal);
  });

  it('reports a changed input byte at the iteration where the replay starts to differ', () => {
    const log = rec.log.slice();
    const at = Buffer.from(log).indexOf('info status');
    expect(at).toBeGreaterThan(0);
    log[at + 5] = 'x'.charCodeAt(0); // "info xtatus"
    const vm = replay(log);
    expect(vm.replay!.run().stop).toBe('divergence');
    const text = vm.replay!.divergence()!;
    const diff = firstDifference(rec.records, vm.trace.records());
    expect(diff).toBeGreaterThan(0);
    const iteration = iterationOf(rec.records, diff);
    expect(text).toMatch(new RegExp(`^replay diverged at iteration ${iteration}, icount \\d+: `));
    expect(text).toContain('log side:');
    expect(text).toContain('replay side:');
    expect(vm.trace.records()[diff]!.args).toEqual({ ch: 'x'.charCodeAt(0) });
  });

  it('replays a cut log up to the cut and says it was interrupted', () => {
    const eventsAt = 14 + new DataView(rec.log.buffer, rec.log.byteOffset).getUint32(10);
    const cut = rec.log.subarray(0, eventsAt + Math.floor((rec.log.length - eventsAt) * 0.7));
    const vm = replay(cut);
    const r = vm.replay!.run();
    expect(r.stop).toBe('truncated');
    expect(vm.replay!.divergence()).toBeNull();
    expect(vm.replay!.status()).toMatchObject({ truncated: true, ended: false });
    expect(memoryStdioText(chardevMemoryIo(vm.kernel).stdio).length).toBeLessThan(rec.terminal.length);
  });

  it('refuses a log recorded with another configuration or guest', () => {
    expect(() => replay(rec.log, { ...CFG, smp: 1 })).toThrow('memory was recorded with another configuration (smp: log 2, now 1)');
    expect(() => replay(rec.log, { ...CFG, kernel: 'guests/bin/busyloop.elf' })).toThrow(/recorded with guest image 'guests\/bin\/demo\.elf' \(hash [0-9a-f]{16}\); the image given now has hash [0-9a-f]{16}/);
  });

  it('keeps the library clients out of a recording and the replay', () => {
    const vm = createMachine({ ...CFG, record: {} });
    expect(() => vm.hmp('info status')).toThrow(/not recorded/);
    const r = replay(rec.log);
    expect(() => r.runFor(1000)).toThrow(/runs by its log/);
    expect(() => r.signal(15)).toThrow(/signals from the log/);
    expect(r.hmp('info replay')).toBe(`Replaying execution 'memory': instruction count = 0\r\n`);
  });

  it('records a host signal and replays the shutdown it causes', () => {
    const vm = createMachine({ kernel: 'guests/bin/demo.elf', record: {} });
    vm.runFor(150_000_000);
    vm.signal(15, 4321);
    vm.runUntil(() => vm.exitStatus() !== null);
    expect(vm.reports).toContain('detvm: terminating on signal 15 from pid 4321 (<unknown process>)');
    const hash = vm.replay!.stateHash();
    vm.close();
    const r = createMachine({ kernel: 'guests/bin/demo.elf', replay: { log: vm.replay!.log() } });
    expect(r.replay!.run().stop).toBe('end');
    expect(r.exitStatus()).toBe(0);
    expect(r.reports).toContain('detvm: terminating on signal 15 from pid 4321 (<unknown process>)');
    expect(r.replay!.stateHash()).toBe(hash);
  });
});
