// The main loop (core/loop/main-loop.ts): phase order of one iteration, poll timeout from BHs,
// timers and sources, GLib priority rules, host input through the boundary, VIRTUAL freeze and
// enable, and the driving API. Method: bare loop machines with tracing on; assertions on the
// trace's call tree and on exact simulated times.
import { describe, expect, it } from 'vitest';
import {
  loopMachineCreate, loopStep, runFor, runUntil, mainLoopWait, timerNew, timerModNs, aioBhNew, qemuBhSchedule,
  gSourceAttach, gSourceDestroy, G_PRIORITY_DEFAULT, vfdOpen, vfdRead, vfdRevents, hostInputAt, G_IO_IN, G_IO_HUP,
  QEMU_CLOCK_REALTIME, QEMU_CLOCK_VIRTUAL, QEMU_CLOCK_VIRTUAL_RT, qemuClockGetNs, cpuEnableTicks, cpuDisableTicks,
  qemuClockEnable, SCALE_MS, qemuTimeoutNsToMs, qemuSoonestTimeout,
} from '../../../core/loop/index.ts';
import { exportCallTree } from '../../../core/trace/index.ts';

const traced = () => loopMachineCreate({ trace: { level: 1 } });

/** A traced machine with a REALTIME timer due now and a BH scheduled, logging into `order`. */
function timerAndBh() {
  const m = traced();
  const order: string[] = [];
  timerModNs(timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, 'rt_timer', () => order.push('timer')), 0);
  qemuBhSchedule(aioBhNew(m.loop.aio, 'my_bh', () => order.push('bh')));
  return { m, order };
}

describe('main loop iteration', () => {
  it('runs the phases in QEMU order: poll, dispatch (aio BHs), then main-loop timers', () => {
    const { m, order } = timerAndBh();
    const recs = loopStep(m);
    expect(order).toEqual(['bh', 'timer']);
    expect(exportCallTree(recs)).toBe(
      [
        '- main_loop_wait (iteration=1)',
        '  - os_host_main_loop_wait',
        '    * qemu_poll_ns (timeout_ns=0, inputs=0)',
        '    - glib_pollfds_poll',
        '      - g_main_context_dispatch',
        '        - aio_ctx_dispatch (ctx="qemu_aio_context")',
        '          - my_bh',
        // Arming the timer at the head of its list woke the loop (qemu_notify_event) before
        // my_bh was scheduled, so LIFO runs my_bh first.
        '          - notify_event_cb',
        '  - qemu_clock_run_all_timers',
        '    - rt_timer (clock="realtime")',
        '',
      ].join('\n'),
    );
  });

  it('sleeps until the soonest deadline: main-loop timers exactly, aio timers rounded up to ms', () => {
    const m = loopMachineCreate();
    const main = timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, 'main', () => {});
    timerModNs(main, 1_234_567);
    mainLoopWait(m, false); // arming woke the loop (notify BH): this poll does not sleep
    expect(m.clocks.simNs).toBe(0);
    mainLoopWait(m, false);
    expect(m.clocks.simNs).toBe(1_234_567);
    const aio = timerNew(m.loop.aio.tlg, QEMU_CLOCK_REALTIME, 1, 'aio', () => {});
    timerModNs(aio, 2_000_001);
    mainLoopWait(m, false);
    // GLib's timeout is in ms: 765,434 ns left rounds up to 1 ms (aio_ctx_prepare).
    expect(m.clocks.simNs).toBe(2_234_567);
    expect(m.loop.lastTimeoutNs).toBe(SCALE_MS);
  });

  it('a nonblocking iteration never moves time; a scheduled BH makes the poll not block', () => {
    const m = loopMachineCreate();
    const t = timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, 't', () => {});
    timerModNs(t, 5000);
    mainLoopWait(m, true);
    expect(m.clocks.simNs).toBe(0);
    qemuBhSchedule(aioBhNew(m.loop.aio, 'b', () => {}));
    mainLoopWait(m, false);
    expect(m.loop.lastTimeoutNs).toBe(0);
    expect(m.clocks.simNs).toBe(0);
  });

  it('timeout helpers: ms round-up and soonest with infinite', () => {
    expect(qemuTimeoutNsToMs(-1)).toBe(-1);
    expect(qemuTimeoutNsToMs(0)).toBe(0);
    expect(qemuTimeoutNsToMs(1)).toBe(1);
    expect(qemuTimeoutNsToMs(1_000_000)).toBe(1);
    expect(qemuTimeoutNsToMs(1_000_001)).toBe(2);
    expect(qemuSoonestTimeout(-1, 5)).toBe(5);
    expect(qemuSoonestTimeout(7, -1)).toBe(7);
    expect(qemuSoonestTimeout(7, 5)).toBe(5);
    expect(qemuSoonestTimeout(-1, -1)).toBe(-1);
  });

  it('dispatches ready sources by priority then attach order, and starves lower priorities', () => {
    const m = loopMachineCreate();
    const ran: string[] = [];
    let readyLow = true;
    gSourceAttach(m.loop.sources, 'low', G_PRIORITY_DEFAULT + 1, { check: () => readyLow, dispatch: () => ran.push('low') });
    gSourceAttach(m.loop.sources, 'a', G_PRIORITY_DEFAULT, { prepare: () => 0, check: () => true, dispatch: () => ran.push('a') });
    const b = gSourceAttach(m.loop.sources, 'b', G_PRIORITY_DEFAULT, { check: () => true, dispatch: () => ran.push('b') });
    mainLoopWait(m, false);
    expect(ran).toEqual(['a', 'b']); // 'a' was ready at prepare: priority DEFAULT+1 not polled
    gSourceDestroy(m.loop.sources, b);
    ran.length = 0;
    readyLow = true;
    const m2 = loopMachineCreate();
    gSourceAttach(m2.loop.sources, 'low', G_PRIORITY_DEFAULT + 1, { check: () => true, dispatch: () => ran.push('low') });
    gSourceAttach(m2.loop.sources, 'a', G_PRIORITY_DEFAULT, { check: () => true, dispatch: () => ran.push('a') });
    mainLoopWait(m2, true);
    expect(ran).toEqual(['a', 'low']); // nothing ready at prepare: all polled, dispatched in priority order
  });

  it('delivers scheduled host input at its virtual time; hang-up only after the data is read', () => {
    const m = loopMachineCreate();
    const fd = vfdOpen(m.fdt, 'conn', 'stream');
    const got: Array<[number, string]> = [];
    gSourceAttach(m.loop.sources, 'reader', G_PRIORITY_DEFAULT, {
      check: () => (vfdRevents(fd) & G_IO_IN) !== 0,
      dispatch: () => got.push([m.clocks.simNs, Buffer.from(vfdRead(fd, 3)).toString()]),
    });
    hostInputAt(m.fdt, 7_000, { kind: 'data', fd: fd.id, data: Buffer.from('hello') });
    hostInputAt(m.fdt, 7_000, { kind: 'hup', fd: fd.id });
    runUntil(m, () => (vfdRevents(fd) & G_IO_HUP) !== 0);
    expect(got).toEqual([[7_000, 'hel'], [7_000, 'lo']]);
  });

  it('VIRTUAL freezes while ticks are disabled and resumes from the frozen value', () => {
    const m = loopMachineCreate();
    const v = () => qemuClockGetNs(m.clocks, QEMU_CLOCK_VIRTUAL);
    runFor(m, 1000);
    expect(v()).toBe(0); // ticks start disabled: VIRTUAL has not started
    cpuEnableTicks(m.clocks);
    qemuClockEnable(m, QEMU_CLOCK_VIRTUAL, true);
    runFor(m, 500);
    expect(v()).toBe(500);
    expect(qemuClockGetNs(m.clocks, QEMU_CLOCK_VIRTUAL_RT)).toBe(500);
    cpuDisableTicks(m.clocks);
    qemuClockEnable(m, QEMU_CLOCK_VIRTUAL, false);
    runFor(m, 10_000);
    expect(v()).toBe(500);
    cpuEnableTicks(m.clocks);
    qemuClockEnable(m, QEMU_CLOCK_VIRTUAL, true);
    runFor(m, 250);
    expect(v()).toBe(750);
    expect(qemuClockGetNs(m.clocks, QEMU_CLOCK_REALTIME)).toBe(11_750);
  });

  it('VIRTUAL timers fire at their virtual deadline, not the real one', () => {
    const m = loopMachineCreate();
    runFor(m, 1000);
    cpuEnableTicks(m.clocks);
    qemuClockEnable(m, QEMU_CLOCK_VIRTUAL, true);
    let at = -1;
    const t = timerNew(m.loop.tlg, QEMU_CLOCK_VIRTUAL, 1, 'v', () => (at = m.clocks.simNs));
    timerModNs(t, 300);
    runFor(m, 5000);
    expect(at).toBe(1300);
  });

  it('runFor lets an idle machine pass time and ends exactly at the target', () => {
    const m = loopMachineCreate();
    runFor(m, 123_456_789);
    expect(m.clocks.simNs).toBe(123_456_789);
    expect(() => runFor(m, -1)).toThrow(/negative/);
  });

  it('runUntil reports a time limit with the virtual time', () => {
    const m = loopMachineCreate();
    const t = timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, 'tick', () => timerModNs(t, m.clocks.simNs + 1000));
    timerModNs(t, 1000);
    expect(() => runUntil(m, () => false, { maxNs: 50_000 })).toThrow(/time limit of 50000 ns reached at 50000 ns/);
  });
});

describe('main loop held off (loop.exclusive: the BQL held by another thread)', () => {
  it('applies host input and dispatches only the holder\'s source; BHs, timers and other sources wait', () => {
    const { m, order } = timerAndBh();
    const other = vfdOpen(m.fdt, 'other', 'stream');
    const mine = vfdOpen(m.fdt, 'mine', 'stream');
    const watch = (fd: typeof mine, name: string) => gSourceAttach(m.loop.sources, name, G_PRIORITY_DEFAULT, {
      prepare: () => ((vfdRevents(fd) & G_IO_IN) !== 0 ? 0 : -1),
      check: () => (vfdRevents(fd) & G_IO_IN) !== 0,
      dispatch: () => {
        order.push(`${name}:${vfdRead(fd, 100).length}`);
      },
    });
    watch(other, 'other_watch');
    const held = watch(mine, 'mine_watch');
    m.loop.exclusive = () => held;
    hostInputAt(m.fdt, 0, { kind: 'data', fd: other.id, data: new Uint8Array([1, 2]) });
    hostInputAt(m.fdt, 0, { kind: 'data', fd: mine.id, data: new Uint8Array([3]) });
    const recs = loopStep(m);
    expect(order).toEqual(['mine_watch:1']);
    expect(other.inboundBytes).toBe(2); // applied, not read
    expect(exportCallTree(recs)).toContain('os_host_main_loop_wait (bql="held")');
    // Nothing else is ready for the holder: the poll would wait rather than spin.
    loopStep(m);
    expect(m.loop.lastTimeoutNs).toBe(-1);
    m.loop.exclusive = null;
    loopStep(m);
    expect(order).toEqual(['mine_watch:1', 'bh', 'other_watch:2', 'timer']);
  });
});

describe('loopStep observers', () => {
  it('call begin, then mid after main_loop_wait and before the vCPU turn, then end', () => {
    const m = traced();
    const order: string[] = [];
    qemuBhSchedule(aioBhNew(m.loop.aio, 'my_bh', () => order.push('bh')));
    m.loop.hooks.vcpuSlice = () => void order.push('vcpu');
    m.loop.stepObservers.push({
      begin: () => void order.push('begin'),
      mid: () => void order.push('mid'),
      end: () => void order.push('end'),
    });
    m.loop.stepObservers.push({ begin: () => void order.push('begin2'), end: () => void order.push('end2') });
    loopStep(m);
    expect(order).toEqual(['begin', 'begin2', 'bh', 'mid', 'vcpu', 'end', 'end2']);
  });
});
