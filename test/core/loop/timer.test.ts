// Timers (core/loop/timer.ts) against QEMU's util/qemu-timer.c semantics: FIFO ties, re-arming
// inside a callback, anticipate, deletion, scale, attributes and deadlines; the heap is checked
// against a sorted reference on seeded random operations, also interleaved with runs and with
// callbacks that re-arm and delete, and over thousands of distinct deadlines up to 2^53 ns.
// Method: a bare loop machine, virtual time moved only by the loop.
import { describe, expect, it } from 'vitest';
import {
  loopMachineCreate, timerNew, timerModNs, timerMod, timerModAnticipateNs, timerDel, timerPending,
  timerExpired, timerlistDeadlineNs, timerlistRunTimers, timerlistgroupDeadlineNs, runFor, runUntil,
  QEMU_CLOCK_REALTIME, QEMU_CLOCK_VIRTUAL, QEMU_CLOCK_HOST, SCALE_MS, SCALE_US, QEMU_TIMER_ATTR_EXTERNAL,
  qemuClockEnable, LoopLimitError, clockAdvanceSimTo, qemuClockGetNs, timerlistHeadExpireNs, timerlistCount,
} from '../../../core/loop/index.ts';
import { AssertionError, prngCreate, prngInt } from '../../../core/util/index.ts';

const mk = () => loopMachineCreate();

describe('timers', () => {
  it('fires equal deadlines in arming order (FIFO), earlier deadlines first', () => {
    const m = mk();
    const fired: string[] = [];
    const tl = m.loop.tlg;
    const a = timerNew(tl, QEMU_CLOCK_REALTIME, 1, 'a', () => fired.push('a'));
    const b = timerNew(tl, QEMU_CLOCK_REALTIME, 1, 'b', () => fired.push('b'));
    const c = timerNew(tl, QEMU_CLOCK_REALTIME, 1, 'c', () => fired.push('c'));
    const d = timerNew(tl, QEMU_CLOCK_REALTIME, 1, 'd', () => fired.push('d'));
    timerModNs(b, 1000);
    timerModNs(a, 1000);
    timerModNs(c, 500);
    timerModNs(d, 1000);
    timerModNs(b, 1000); // re-arming moves b behind d: a new arming, later in FIFO order
    runFor(m, 2000);
    expect(fired).toEqual(['c', 'a', 'd', 'b']);
  });

  it('runs each timer at exactly its deadline in simulated time', () => {
    const m = mk();
    const at: number[] = [];
    const t = timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, SCALE_US, 't', () => at.push(m.clocks.simNs));
    timerMod(t, 1500); // 1.5 ms in us units
    runFor(m, 10 * SCALE_MS);
    expect(at).toEqual([1_500_000]);
    expect(m.clocks.simNs).toBe(10 * SCALE_MS);
  });

  it('re-arming inside the callback at or before now fires again in the same pass', () => {
    const m = mk();
    let n = 0;
    const iterations: number[] = [];
    const t = timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, 'rearm', () => {
      iterations.push(m.loop.iteration);
      if (++n < 3) timerModNs(t, m.clocks.simNs); // due now: same pass
      else if (n < 5) timerModNs(t, m.clocks.simNs + 100); // later: a later iteration
    });
    timerModNs(t, 10);
    runFor(m, 1000);
    expect(n).toBe(5);
    expect(iterations[0]).toBe(iterations[1]);
    expect(iterations[1]).toBe(iterations[2]);
    expect(iterations[3]!).toBeGreaterThan(iterations[2]!);
  });

  it('anticipate only moves a pending timer earlier', () => {
    const m = mk();
    const t = timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, 't', () => {});
    timerModAnticipateNs(t, 500);
    expect(t.expireNs).toBe(500);
    timerModAnticipateNs(t, 800);
    expect(t.expireNs).toBe(500);
    timerModAnticipateNs(t, 200);
    expect(t.expireNs).toBe(200);
  });

  it('del, pending and expired', () => {
    const m = mk();
    let fired = 0;
    const t = timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, 't', () => fired++);
    expect(timerPending(t)).toBe(false);
    timerModNs(t, 100);
    expect(timerPending(t)).toBe(true);
    expect(timerExpired(t, 99)).toBe(false);
    expect(timerExpired(t, 100)).toBe(true);
    timerDel(t);
    timerDel(t); // deleting twice is harmless, as in QEMU
    expect(timerPending(t)).toBe(false);
    runFor(m, 1000);
    expect(fired).toBe(0);
  });

  it('deadline: -1 for empty or disabled lists, 0 once expired, else the distance', () => {
    const m = mk();
    const rt = m.loop.tlg.lists[QEMU_CLOCK_REALTIME];
    expect(timerlistDeadlineNs(rt)).toBe(-1);
    const t = timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, 't', () => {});
    timerModNs(t, 300);
    expect(timerlistDeadlineNs(rt)).toBe(300);
    clockAdvanceSimTo(m.clocks, 500);
    expect(timerlistDeadlineNs(rt)).toBe(0);
    const v = timerNew(m.loop.tlg, QEMU_CLOCK_VIRTUAL, 1, 'v', () => {});
    timerModNs(v, 10);
    // VIRTUAL starts disabled (qemu_clock_init): it contributes no deadline.
    expect(timerlistDeadlineNs(m.loop.tlg.lists[QEMU_CLOCK_VIRTUAL])).toBe(-1);
    expect(timerlistgroupDeadlineNs(m.loop.tlg)).toBe(0);
  });

  it('the EXTERNAL attribute filters deadlines', () => {
    const m = mk();
    const host = m.loop.tlg.lists[QEMU_CLOCK_HOST];
    const now = 0;
    const plain = timerNew(m.loop.tlg, QEMU_CLOCK_HOST, 1, 'plain', () => {});
    const ext = timerNew(m.loop.tlg, QEMU_CLOCK_HOST, 1, 'ext', () => {}, null, QEMU_TIMER_ATTR_EXTERNAL);
    timerModNs(plain, now + 100);
    timerModNs(ext, now + 50);
    expect(timerlistDeadlineNs(host)).toBe(50);
    expect(timerlistDeadlineNs(host, ~QEMU_TIMER_ATTR_EXTERNAL)).toBe(100); // external left out
    expect(timerlistDeadlineNs(host, QEMU_TIMER_ATTR_EXTERNAL)).toBe(50);
    timerDel(plain);
    expect(timerlistDeadlineNs(host, ~QEMU_TIMER_ATTR_EXTERNAL)).toBe(-1);
  });

  it('VIRTUAL timers wait while the clock is disabled and fire once enabled', () => {
    const m = mk();
    let fired = -1;
    const v = timerNew(m.loop.tlg, QEMU_CLOCK_VIRTUAL, 1, 'v', () => (fired = m.clocks.simNs));
    timerModNs(v, 0);
    runFor(m, 1000);
    expect(fired).toBe(-1);
    expect(timerlistRunTimers(m, m.loop.tlg.lists[QEMU_CLOCK_VIRTUAL])).toBe(false);
    qemuClockEnable(m, QEMU_CLOCK_VIRTUAL, true);
    runFor(m, 1);
    expect(fired).toBe(1000);
  });

  it('notifies the loop only when a timer becomes the head of its list (timerlist_notify)', () => {
    const m = mk();
    let notified = 0;
    m.loop.hooks.timerNotify = (_m, type) => {
      expect(type).toBe(QEMU_CLOCK_REALTIME);
      notified++;
    };
    const tl = m.loop.tlg;
    const a = timerNew(tl, QEMU_CLOCK_REALTIME, 1, 'a', () => {});
    const b = timerNew(tl, QEMU_CLOCK_REALTIME, 1, 'b', () => {});
    const c = timerNew(tl, QEMU_CLOCK_REALTIME, 1, 'c', () => {});
    const counts: number[] = [];
    timerModNs(a, 200); // the head of an empty list
    counts.push(notified);
    timerModNs(b, 300); // later than the head
    counts.push(notified);
    timerModNs(c, 200); // the head's deadline, armed after it
    counts.push(notified);
    timerModNs(b, 100); // before the head
    counts.push(notified);
    timerModNs(b, 100); // the head re-armed at its own deadline: deleted, then inserted first again
    counts.push(notified);
    timerDel(b); // deleting never notifies
    counts.push(notified);
    timerModNs(a, 200); // re-armed behind c: c is the head now
    counts.push(notified);
    expect(counts).toEqual([1, 1, 1, 2, 3, 3, 3]);
  });

  it('refuses negative, NaN, fractional and unsafe deadlines with an assertion naming the value', () => {
    const m = mk();
    const t = timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, 'bad', () => {});
    expect(() => timerModNs(t, -5)).toThrow(AssertionError);
    expect(() => timerModNs(t, -5)).toThrow(/timer 'bad' deadline: -5 ns is negative/);
    expect(() => timerModNs(t, Number.NaN)).toThrow(/NaN ns is not a safe integer/);
    expect(() => timerModNs(t, 1.5)).toThrow(/1\.5 ns is not a safe integer/);
    expect(() => timerModNs(t, 2 ** 60)).toThrow(/not a safe integer/);
    const big = timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, SCALE_MS, 'scaled', () => {});
    expect(() => timerMod(big, 2 ** 50)).toThrow(/not a safe integer/);
    expect(timerPending(t)).toBe(false);
  });

  it('a timer storm fails with the limit error instead of hanging', () => {
    const m = mk();
    const t = timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, 'storm', () => timerModNs(t, m.clocks.simNs));
    timerModNs(t, 5);
    expect(() => runFor(m, 100)).toThrow(LoopLimitError);
    expect(() => runFor(loopMachineCreate(), 0)).not.toThrow();
  });

  it('a timer that re-arms itself in the future forever is stopped by the iteration limit', () => {
    const m = mk();
    const t = timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, 'ticker', () => timerModNs(t, m.clocks.simNs + 1));
    timerModNs(t, 1);
    expect(() => runUntil(m, () => false, { maxIterations: 1000 })).toThrow(
      /runUntil: iteration limit 1000 reached at \d+ ns \(iteration 1000\); last dispatched: timer ticker/,
    );
  });

  it('fires in (deadline, arming) order for seeded random operations (heap vs sorted reference)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const m = mk();
      const rng = prngCreate(seed);
      const fired: number[] = [];
      const armed = new Map<number, { at: number; seq: number }>();
      let seq = 0;
      const timers = Array.from({ length: 200 }, (_, i) =>
        timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, `t${i}`, () => fired.push(i)));
      for (let op = 0; op < 2000; op++) {
        const i = prngInt(rng, timers.length);
        if (prngInt(rng, 4) === 0) {
          timerDel(timers[i]!);
          armed.delete(i);
        } else {
          const at = prngInt(rng, 50) * 10;
          timerModNs(timers[i]!, at);
          armed.set(i, { at, seq: seq++ });
        }
      }
      const expected = [...armed.entries()].sort((a, b) => a[1].at - b[1].at || a[1].seq - b[1].seq).map((e) => e[0]);
      runFor(m, 1000);
      expect(fired, `seed ${seed}`).toEqual(expected);
    }
  });
  it('keeps (deadline, arming) order while time passes, callbacks re-arm and delete (reference model)', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const m = mk();
      const rng = prngCreate(seed);
      const N = 120;
      const clockNow = (): number => qemuClockGetNs(m.clocks, QEMU_CLOCK_REALTIME);
      // Every third timer re-arms itself a little later when it fires; every fifth deletes its neighbour.
      const later = (i: number, at: number): number => at + 1 + (i % 7) * 10;
      const fired: string[] = [];
      const timers = Array.from({ length: N }, (_, i) => timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, `t${i}`, () => {
        fired.push(`${i}@${clockNow()}`);
        if (i % 3 === 0 && fired.length < 3000) timerModNs(timers[i]!, later(i, clockNow()));
        if (i % 5 === 0) timerDel(timers[(i + 1) % N]!);
      }));
      // The model: pending (deadline, arming number) per timer, fired in that order.
      const model = new Map<number, { at: number; seq: number }>();
      const modelFired: string[] = [];
      let seq = 0;
      const modelRun = (until: number): void => {
        for (;;) {
          let best: [number, { at: number; seq: number }] | null = null;
          for (const e of model) {
            if (e[1].at > until) continue;
            if (best === null || e[1].at < best[1].at || (e[1].at === best[1].at && e[1].seq < best[1].seq)) best = e;
          }
          if (best === null) return;
          const [i, { at }] = best;
          model.delete(i);
          modelFired.push(`${i}@${at}`);
          if (i % 3 === 0 && modelFired.length < 3000) model.set(i, { at: later(i, at), seq: seq++ });
          if (i % 5 === 0) model.delete((i + 1) % N);
        }
      };
      for (let round = 0; round < 60; round++) {
        const now = clockNow();
        for (let op = 0; op < 20; op++) {
          const i = prngInt(rng, N);
          if (prngInt(rng, 5) === 0) {
            timerDel(timers[i]!);
            model.delete(i);
          } else {
            const at = now + prngInt(rng, 40) * 5;
            timerModNs(timers[i]!, at);
            model.set(i, { at, seq: seq++ });
          }
        }
        const soonest = [...model.values()].reduce((a, e) => Math.min(a, e.at), Infinity);
        expect(timerlistDeadlineNs(m.loop.tlg.lists[QEMU_CLOCK_REALTIME]), `seed ${seed} round ${round}`)
          .toBe(soonest === Infinity ? -1 : Math.max(0, soonest - now));
        const until = now + 1 + prngInt(rng, 60);
        runFor(m, until - now);
        modelRun(until);
        expect(fired, `seed ${seed} round ${round}`).toEqual(modelFired);
      }
      expect(fired.length).toBeGreaterThan(500);
    }
  });

  it('keeps order over thousands of distinct deadlines, small and near 2^53 (index growth, removal from inside the heap)', () => {
    const base = Number(process.env.SEED ?? 1);
    for (let seed = base; seed < base + 4; seed++) {
      const m = mk();
      const rt = m.loop.tlg.lists[QEMU_CLOCK_REALTIME];
      const rng = prngCreate(seed);
      const N = 3000;
      const far = 2 ** 52; // ns values whose upper 32 bits are not zero
      const fired: number[] = [];
      const timers = Array.from({ length: N }, (_, i) => timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, `t${i}`, () => fired.push(i)));
      const model = new Map<number, { at: number; seq: number }>();
      let seq = 0;
      const soonest = (): number => [...model.values()].reduce((a, e) => (a < 0 || e.at < a ? e.at : a), -1);
      for (let op = 0; op < 20_000; op++) {
        const i = prngInt(rng, N);
        const r = prngInt(rng, 10);
        if (r < 3) {
          timerDel(timers[i]!);
          model.delete(i);
        } else {
          // Mostly distinct deadlines (up to 4000 per half), some shared.
          const at = (r < 6 ? 1 : far) + prngInt(rng, 4000) * 1_000_000;
          timerModNs(timers[i]!, at);
          model.set(i, { at, seq: seq++ });
        }
        if (op % 101 === 0) expect(timerlistHeadExpireNs(rt), `seed ${seed} op ${op}`).toBe(soonest());
      }
      expect(timerlistCount(rt), `seed ${seed}`).toBe(model.size);
      const expected = [...model.entries()].sort((a, b) => a[1].at - b[1].at || a[1].seq - b[1].seq).map((e) => e[0]);
      clockAdvanceSimTo(m.clocks, far + 4000 * 1_000_000);
      timerlistRunTimers(m, rt);
      expect(fired, `seed ${seed}`).toEqual(expected);
      expect(timerlistHeadExpireNs(rt), `seed ${seed}`).toBe(-1);
    }
  });
});
