// Run states and stop/cont at the kernel level (core/system): QEMU 7.2's transition table,
// vm_stop / vm_start with their events and traced call chains, requests handled by
// main_loop_should_exit, and a seeded property test over random stop/cont/reset sequences on
// 1-4 vCPUs. Method: hand-assembled spinning guests on whole virt machines, virtual time only.
import { describe, expect, it } from 'vitest';
import * as A from '../cpu/asm.ts';
import { program, virtWithSerial } from '../../support/virt.ts';
import {
  RUN_STATES, runstateSet, runstateTransitionAllowed, vmStop, vmStart, qemuSystemResetRequest,
  qemuSystemShutdownRequest, runstateIsRunning, type RunState,
} from '../../../core/system/index.ts';
import {
  QEMU_CLOCK_VIRTUAL, qemuClockGetNs, runFor, type QapiEvent,
} from '../../../core/loop/index.ts';
import { notifierListAdd as addNotifier, prngCreate, prngInt, AssertionError } from '../../../core/util/index.ts';
import { exportCallTree, traceHash } from '../../../core/trace/index.ts';
import type { VirtMachine } from '../../../core/machine.ts';
import { ramReadBytes } from '../../../core/memory/index.ts';

const { R } = A;

/** Each hart increments its own word at 0x80010000 + 4*hartid forever. */
function spinGuest(): Uint8Array {
  return program([
    A.slli(R.t0, R.a0, 2),
    A.lui(R.t1, 0x80010),
    A.add(R.t1, R.t1, R.t0),
    A.lw(R.t2, R.t1, 0),
    A.addi(R.t2, R.t2, 1),
    A.sw(R.t2, R.t1, 0),
    A.jal(R.zero, -12),
  ]);
}

function events(m: VirtMachine): string[] {
  const out: string[] = [];
  addNotifier(m.qapiEvents, (e: QapiEvent) => out.push(e.data ? `${e.event} ${JSON.stringify(e.data)}` : e.event));
  return out;
}

const vnow = (m: VirtMachine): number => qemuClockGetNs(m.clocks, QEMU_CLOCK_VIRTUAL);

describe('run states', () => {
  it('allows exactly the transitions of QEMU 7.2 and asserts on the others', () => {
    let allowed = 0;
    for (const from of RUN_STATES) {
      for (const to of RUN_STATES) {
        const { m } = virtWithSerial(spinGuest(), { autostart: false });
        m.runstate.current = from;
        if (from === to) {
          runstateSet(m, to); // no-op
          expect(m.runstate.current).toBe(from);
        } else if (runstateTransitionAllowed(from, to)) {
          allowed++;
          runstateSet(m, to);
          expect(m.runstate.current).toBe(to);
        } else {
          expect(() => runstateSet(m, to)).toThrow(AssertionError);
          expect(() => runstateSet(m, to)).toThrow(`invalid runstate transition: '${from}' -> '${to}'`);
          expect(m.runstate.current).toBe(from);
        }
      }
    }
    expect(allowed).toBe(71); // the pairs of 7.2's runstate_transitions_def (spec §4.2)
  });

  it('stop freezes instructions and VIRTUAL; cont resumes; STOP and RESUME events', () => {
    const { m } = virtWithSerial(spinGuest(), { smp: 2, trace: { level: 1 } });
    const ev = events(m);
    runFor(m, 1_000_000);
    const ic = m.clocks.icount;
    expect(ic).toBeGreaterThan(100_000);
    const from = m.trace.seq;
    vmStop(m, 'paused');
    expect(m.runstate.current).toBe('paused');
    expect(m.sys.vcpus.every((v) => v.stopped)).toBe(true);
    const tree = exportCallTree(m.trace.records!.filter((r) => r.seq >= from));
    expect(tree).toContain('- vm_stop (state="paused")\n  - do_vm_stop (state="paused")\n');
    expect(tree).toMatch(/- pause_all_vcpus\n(.*\n)*?\s+- qemu_cpu_kick \(cpu=0\)\n(.*\n)*?\s+- qemu_wait_io_event_common \(cpu=0\)\n\s+- qemu_cpu_stop \(cpu=0\)/);
    const v = vnow(m);
    const icPaused = m.clocks.icount;
    runFor(m, 5_000_000);
    expect(m.clocks.icount).toBe(icPaused);
    expect(vnow(m)).toBe(v);
    vmStart(m);
    runFor(m, 1_000_000);
    expect(m.clocks.icount).toBeGreaterThan(icPaused);
    expect(ev).toEqual(['STOP', 'RESUME']);
    // Both harts made progress (round robin).
    const buf = new Uint8Array(8);
    ramReadBytes(m.as, 0x10000, buf);
    const words = new DataView(buf.buffer);
    expect(words.getUint32(0, true)).toBeGreaterThan(0);
    expect(words.getUint32(4, true)).toBeGreaterThan(0);
  });

  it('stop while paused does nothing (no event); cont while running does nothing', () => {
    const { m } = virtWithSerial(spinGuest(), { autostart: false });
    const ev = events(m);
    vmStop(m, 'paused'); // prelaunch → nothing
    expect(m.runstate.current).toBe('prelaunch');
    vmStart(m);
    vmStart(m);
    expect(ev).toEqual(['RESUME']);
  });

  it('a reset request while paused lands in prelaunch with a RESET event', () => {
    const { m } = virtWithSerial(spinGuest());
    const ev = events(m);
    runFor(m, 100_000);
    vmStop(m, 'paused');
    qemuSystemResetRequest(m, 'host-qmp-system-reset');
    runFor(m, 1);
    expect(m.runstate.current).toBe('prelaunch');
    expect(ev).toEqual(['STOP', 'RESET {"guest":false,"reason":"host-qmp-system-reset"}']);
    expect(m.cpus[0]!.pc).toBe(0x1000);
  });

  it('shutdown with -no-shutdown stops in the shutdown state instead of exiting', () => {
    const { m } = virtWithSerial(spinGuest(), { shutdownAction: 'pause' });
    const ev = events(m);
    runFor(m, 100_000);
    qemuSystemShutdownRequest(m, 'host-qmp-quit');
    runFor(m, 1);
    expect(m.loop.exitStatus).toBeNull();
    expect(m.runstate.current).toBe('shutdown');
    expect(ev).toEqual(['SHUTDOWN {"guest":false,"reason":"host-qmp-quit"}', 'STOP']);
  });
});

describe('stop/cont property test', () => {
  const N = Number(process.env.RUNSTATE_SEQUENCES ?? 1000);
  const SEED = Number(process.env.SEED ?? 7);

  function runSequence(seed: number): { hash: string; problems: string[] } {
    const rng = prngCreate(seed);
    const smp = 1 + prngInt(rng, 4);
    const { m } = virtWithSerial(spinGuest(), { smp, trace: { level: 1, retain: false } });
    const problems: string[] = [];
    let last: RunState = m.runstate.current;
    addNotifier(m.qapiEvents, (e: QapiEvent) => {
      if (e.event === 'STOP' && last !== 'running') problems.push(`STOP after ${last}`);
      if (e.event === 'RESUME' && last === 'running') problems.push('RESUME while running');
    });
    for (let op = 0; op < 12; op++) {
      const gap = prngInt(rng, 300_000);
      const ic0 = m.clocks.icount;
      const v0 = vnow(m);
      const wasRunning = runstateIsRunning(m);
      runFor(m, gap);
      if (!wasRunning && m.clocks.icount !== ic0) problems.push(`op ${op}: instructions retired while ${m.runstate.current}`);
      if (!wasRunning && vnow(m) !== v0) problems.push(`op ${op}: VIRTUAL advanced while ${m.runstate.current}`);
      last = m.runstate.current;
      switch (prngInt(rng, 4)) {
        case 0: vmStop(m, 'paused'); break;
        case 1: if (m.runstate.current !== 'running') vmStart(m); break;
        case 2: qemuSystemResetRequest(m, 'host-qmp-system-reset'); break;
        default: void m.runstate.current; // info status: reads only
      }
      last = m.runstate.current;
    }
    return { hash: traceHash(m.trace), problems };
  }

  it(`${N} random sequences (seed ${SEED}): invariants hold and each replays identically`, () => {
    for (let i = 0; i < N; i++) {
      const seed = SEED * 100_000 + i;
      const a = runSequence(seed);
      expect(a.problems, `seed ${seed}`).toEqual([]);
      expect(runSequence(seed).hash, `seed ${seed}`).toBe(a.hash);
    }
  }, 300_000);
});
