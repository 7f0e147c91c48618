// Bottom halves (core/loop/async.ts) against util/async.c: LIFO order, the slice rule ("scheduled
// during a poll runs in the next poll"), idle BHs and their 10 ms timeout, one-shot, cancel,
// delete, and the storm limit. Method: a bare loop machine stepped one iteration at a time.
import { describe, expect, it } from 'vitest';
import {
  loopMachineCreate, aioBhNew, qemuBhSchedule, qemuBhScheduleIdle, qemuBhCancel, qemuBhDelete,
  aioBhScheduleOneshot, aioComputeTimeout, aioBhPoll, loopStep, runFor, runUntil, LoopLimitError,
  BH_IDLE_TIMEOUT_NS, timerNew, timerModNs, QEMU_CLOCK_REALTIME,
} from '../../../core/loop/index.ts';

describe('bottom halves', () => {
  it('run in reverse order of scheduling (LIFO) within one poll', () => {
    const m = loopMachineCreate();
    const ran: string[] = [];
    const bhs = ['a', 'b', 'c'].map((n) => aioBhNew(m.loop.aio, n, () => ran.push(n)));
    for (const bh of bhs) qemuBhSchedule(bh);
    qemuBhSchedule(bhs[0]!); // already pending: keeps its place
    loopStep(m);
    expect(ran).toEqual(['c', 'b', 'a']);
  });

  it('a BH scheduled by a callback runs in the next poll, not the current slice', () => {
    const m = loopMachineCreate();
    const ran: Array<[string, number]> = [];
    const second = aioBhNew(m.loop.aio, 'second', () => ran.push(['second', m.loop.iteration]));
    const first = aioBhNew(m.loop.aio, 'first', () => {
      ran.push(['first', m.loop.iteration]);
      qemuBhSchedule(second);
      qemuBhSchedule(first); // rescheduling itself: also next poll, and LIFO puts it first
    });
    qemuBhSchedule(first);
    loopStep(m);
    expect(ran).toEqual([['first', 1]]);
    loopStep(m);
    expect(ran.slice(1)).toEqual([['first', 2], ['second', 2]]);
  });

  it('a BH pending later in the current slice runs in this slice even if rescheduled', () => {
    const m = loopMachineCreate();
    const ran: string[] = [];
    const late = aioBhNew(m.loop.aio, 'late', () => ran.push('late'));
    const early = aioBhNew(m.loop.aio, 'early', () => {
      ran.push('early');
      qemuBhSchedule(late);
    });
    qemuBhSchedule(late);
    qemuBhSchedule(early); // runs first (LIFO), late is still pending in the slice
    loopStep(m);
    expect(ran).toEqual(['early', 'late']);
    loopStep(m);
    expect(ran).toEqual(['early', 'late']);
  });

  it('timeout: 0 with a scheduled BH, 10 ms with only idle ones, else the context timers', () => {
    const m = loopMachineCreate();
    const ctx = m.loop.aio;
    expect(aioComputeTimeout(ctx)).toBe(-1);
    const idle = aioBhNew(ctx, 'idle', () => {});
    qemuBhScheduleIdle(idle);
    expect(aioComputeTimeout(ctx)).toBe(BH_IDLE_TIMEOUT_NS);
    const busy = aioBhNew(ctx, 'busy', () => {});
    qemuBhSchedule(busy);
    expect(aioComputeTimeout(ctx)).toBe(0);
    qemuBhCancel(busy);
    qemuBhCancel(idle);
    const t = timerNew(ctx.tlg, QEMU_CLOCK_REALTIME, 1, 'aio-timer', () => {});
    timerModNs(t, 12345);
    expect(aioComputeTimeout(ctx)).toBe(12345);
  });

  it('an idle BH lets the loop sleep 10 ms, then runs', () => {
    const m = loopMachineCreate();
    let at = -1;
    qemuBhScheduleIdle(aioBhNew(m.loop.aio, 'idle', () => (at = m.clocks.simNs)));
    runUntil(m, () => at >= 0);
    expect(at).toBe(BH_IDLE_TIMEOUT_NS);
  });

  it('one-shot BHs run once; cancelled ones never; deleted ones are dropped', () => {
    const m = loopMachineCreate();
    const ran: string[] = [];
    aioBhScheduleOneshot(m.loop.aio, 'once', () => ran.push('once'));
    const c = aioBhNew(m.loop.aio, 'cancelled', () => ran.push('cancelled'));
    qemuBhSchedule(c);
    qemuBhCancel(c);
    const d = aioBhNew(m.loop.aio, 'deleted', () => ran.push('deleted'));
    qemuBhSchedule(d);
    qemuBhDelete(d);
    runFor(m, 1_000_000);
    expect(ran).toEqual(['once']);
  });

  it('aio_bh_poll reports progress only for non-idle BHs', () => {
    const m = loopMachineCreate();
    qemuBhScheduleIdle(aioBhNew(m.loop.aio, 'i', () => {}));
    expect(aioBhPoll(m, m.loop.aio)).toBe(false);
    qemuBhSchedule(aioBhNew(m.loop.aio, 'b', () => {}));
    expect(aioBhPoll(m, m.loop.aio)).toBe(true);
  });

  it('a BH that reschedules itself forever hits the iteration limit, not a hang', () => {
    const m = loopMachineCreate();
    const bh = aioBhNew(m.loop.aio, 'spinner', () => qemuBhSchedule(bh));
    qemuBhSchedule(bh);
    expect(() => runFor(m, 1, { maxIterations: 500 })).toThrow(LoopLimitError);
    expect(() => runFor(m, 1, { maxIterations: 500 })).toThrow(/last dispatched: bh spinner/);
    expect(m.clocks.simNs).toBe(0); // it never let time move
  });

  it('an empty loop waiting forever is reported, not hung', () => {
    const m = loopMachineCreate();
    expect(() => runUntil(m, () => false)).toThrow(/would wait forever/);
  });
});
