// Reverse execution (core/replay/debugger.ts): seeking to 100 seeded random instruction counts,
// backwards and forwards, lands in exactly the state of a straight run to that count: the same
// state hash, the same migration stream (vm.save(), taken out of band) and the same trace hash.
// The straight run is a second replay of the same log that never uses a snapshot but the one at
// the start. Afterwards the replay still runs to the end without a divergence. Also breakpoints
// (any number, QEMU's one-shot ones and persistent ones) and the monitor commands in play mode.
// SEED (environment) picks the targets.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createMachine, type DetvmMachine, type MachineConfig } from '../../../index.ts';
import { replayDebuggerIsolated } from '../../../core/replay/index.ts';
import { prngCreate, prngInt } from '../../../core/util/index.ts';
import { chardevMemoryIo, memoryStdioInput } from '../../../chardev/index.ts';

const SEED = Number(process.env['SEED'] ?? 1);

function record(cfg: MachineConfig, drive: (vm: DetvmMachine) => void): { log: Uint8Array; traceHash: string } {
  const vm = createMachine({ ...cfg, record: {} });
  drive(vm);
  const traceHash = vm.trace.hash();
  vm.close();
  return { log: vm.replay!.log(), traceHash };
}

function migrationHash(vm: DetvmMachine): string {
  const bytes = replayDebuggerIsolated(vm.replay!.debugger(), () => vm.save());
  return createHash('sha256').update(bytes).digest('hex');
}

function seekSuite(name: string, cfg: MachineConfig, drive: (vm: DetvmMachine) => void, snapshotIntervalInsns: number): void {
  describe(`seek in ${name} (SEED=${SEED})`, () => {
    const rec = record(cfg, drive);

    it('reaches 100 random instruction counts exactly, as a straight run does', () => {
      const vm = createMachine({ ...cfg, replay: { log: rec.log, snapshotIntervalInsns, snapshotIntervalIterations: 50 } });
      const straight = createMachine({ ...cfg, replay: { log: rec.log, snapshotIntervalInsns: 1e15, snapshotIntervalIterations: 1e9 } });
      const last = vm.replay!.status().lastIcount;
      expect(last).toBeGreaterThan(1000);
      const rng = prngCreate(SEED);
      let backwards = 0;
      let prev = 0;
      for (let i = 0; i < 100; i++) {
        const t = prngInt(rng, last + 1);
        if (t < prev) backwards++;
        prev = t;
        expect(vm.replay!.seek(t), `seek ${t} (SEED=${SEED})`).toBeNull();
        expect(straight.replay!.seek(t), `straight ${t} (SEED=${SEED})`).toBeNull();
        expect(vm.replay!.status().icount).toBe(t);
        expect(vm.replay!.stateHash(), `state at ${t} (SEED=${SEED})`).toBe(straight.replay!.stateHash());
        expect(vm.trace.hash(), `trace at ${t} (SEED=${SEED})`).toBe(straight.trace.hash());
        if (i % 20 === 0) expect(migrationHash(vm), `migration stream at ${t} (SEED=${SEED})`).toBe(migrationHash(straight));
      }
      expect(backwards).toBeGreaterThan(20);
      expect(vm.replay!.status().snapshots).toBeGreaterThan(1);
      expect(vm.replay!.run().stop).toBe('end');
      expect(vm.replay!.divergence()).toBeNull();
      expect(vm.trace.hash()).toBe(rec.traceHash);
    }, 120_000);
  });
}

seekSuite('a two-hart compute guest', { kernel: 'guests/bin/mixed.elf', smp: 2, memory: '16M' }, (vm) => vm.runFor(6_000_000), 1_000_000);

seekSuite('a two-hart ticking guest with monitor traffic', {
  kernel: 'guests/bin/demo.elf', smp: 2, serial: 'mon:stdio', trace: 1, memory: '16M',
}, (vm) => {
  const st = chardevMemoryIo(vm.kernel).stdio;
  vm.runFor(300_000_000);
  memoryStdioInput(st, '\x01cinfo replay\rinfo registers\r');
  vm.runFor(900_000_000);
}, 1000);

describe('breakpoints and the replay commands in play mode', () => {
  const cfg: MachineConfig = { kernel: 'guests/bin/mixed.elf', smp: 2 };
  const rec = record(cfg, (vm) => vm.runFor(3_000_000));

  it('stops at every breakpoint in order; QEMU\'s are deleted when hit, persistent ones stay', () => {
    const vm = createMachine({ ...cfg, replay: { log: rec.log } });
    const h = vm.replay!;
    expect(h.break(2_000_000)).toBeNull();
    expect(h.break(500_000, true)).toBeNull();
    expect(h.break(1_234_567)).toBeNull();
    expect(h.run()).toEqual({ stop: 'breakpoint', icount: 500_000 });
    expect(h.run()).toEqual({ stop: 'breakpoint', icount: 1_234_567 });
    expect(h.run()).toEqual({ stop: 'breakpoint', icount: 2_000_000 });
    expect(h.status().breakpoints).toEqual([500_000]);
    expect(h.break(10)).toBe('cannot set breakpoint at the instruction in the past');
    expect(h.run().stop).toBe('end');
    expect(h.seek(100)).toBeNull();
    expect(h.run()).toEqual({ stop: 'breakpoint', icount: 500_000 });
    expect(h.seek(4_000_000)).toBe('cannot seek to the specified instruction count');
  });

  it('runs replay_break, replay_seek and info replay on the debugger monitor with QEMU\'s texts', () => {
    const vm = createMachine({ ...cfg, replay: { log: rec.log, name: 'x.rr' } });
    expect(vm.hmp('replay_seek 1000')).toBe('');
    expect(vm.hmp('info replay')).toBe("Replaying execution 'x.rr': instruction count = 1000\r\n");
    expect(vm.hmp('replay_break 10')).toBe('cannot set breakpoint at the instruction in the past\r\n');
    expect(vm.hmp('replay_break 2000')).toBe('');
    expect(vm.qmp('replay-break', { icount: 3000 })).toEqual({});
    expect(vm.replay!.status().breakpoints).toEqual([2000, 3000]);
    expect(vm.replay!.run()).toEqual({ stop: 'breakpoint', icount: 2000 });
    expect(vm.hmp('replay_delete_break')).toBe('');
    expect(vm.replay!.status().breakpoints).toEqual([]);
    expect(vm.qmp('query-replay')).toEqual({ mode: 'play', filename: 'x.rr', icount: 2000 });
    expect(vm.hmp('replay_seek 99999999')).toBe('cannot seek to the specified instruction count\r\n');
    expect(() => vm.qmp('replay-seek', { icount: 99999999 })).toThrow('cannot seek to the specified instruction count');
    expect(vm.qmp('replay-seek', { icount: 5 })).toEqual({});
    expect(vm.replay!.status().icount).toBe(5);
    // The debugger's commands leave no trace in the replay.
    expect(vm.replay!.run().stop).toBe('end');
    expect(vm.replay!.divergence()).toBeNull();
    expect(vm.trace.hash()).toBe(rec.traceHash);
  });

  it('gives QEMU\'s texts outside play mode', () => {
    const none = createMachine({ kernel: 'guests/bin/demo.elf' });
    expect(none.hmp('info replay')).toBe('Record/replay is not active\r\n');
    expect(none.hmp('replay_break 5')).toBe('setting the breakpoint is allowed only in play mode\r\n');
    expect(none.hmp('replay_delete_break')).toBe('replay breakpoints are allowed only in play mode\r\n');
    expect(none.hmp('replay_seek 5')).toBe('replay must be enabled to seek\r\n');
    expect(Object.keys(none.qmp('query-replay') as object)).toEqual(['icount', 'mode']);
    expect(none.qmp('query-replay')).toMatchObject({ mode: 'none' });
    expect(() => none.qmp('replay-seek', { icount: 5 })).toThrow('replay must be enabled to seek');
  });
});
