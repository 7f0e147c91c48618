// Asynchronous block requests in virtual time: completion at the modelled latency (fixed +
// per-byte, FIFO per backend), in-flight counts per node, backend and machine, the data being in
// the image before the callback runs, error completions (-EIO, -EPERM, -ENOMEDIUM), drained
// sections that hold new requests back, bdrv_drain_all's time warp and its limit, flush_all.
// Method: a bare loop machine with an in-memory file provider, stepped by runUntil / drain.
import { describe, expect, it } from 'vitest';
import {
  type BlockBackend, blkAioFlush, blkAioPdiscard, blkAioPreadv, blkAioPwritev, blkAioPwriteZeroes,
  bdrvDrainAll, bdrvDrainAllBegin, bdrvDrainAllEnd, bdrvFlushAll, bdrvInFlightAll, blockSetIo, blockState,
  blkNew, driveNew, driveParse, memBlockFileProviderCreate, qcow2Create, blkPread, BlockDrainLimitError,
  EIO, EPERM, ENOMEDIUM,
} from '../../../core/block/index.ts';
import {
  loopMachineCreate, runFor, runUntil, timerDel, QEMU_CLOCK_REALTIME, qemuClockGetNs, type LoopMachine,
} from '../../../core/loop/index.ts';

function machineWithDrive(opts = 'file=d.qcow2,format=qcow2,if=none,id=d0', traceLevel: 0 | 1 | 2 = 0): { m: LoopMachine; blk: BlockBackend } {
  const m = loopMachineCreate({ trace: { level: traceLevel } });
  const p = memBlockFileProviderCreate();
  const f = p.create('d.qcow2');
  qcow2Create(f, { size: 16 << 20 });
  f.close();
  p.create('r.raw').pwrite(0, new Uint8Array(1 << 20));
  blockSetIo(m, p);
  const o = driveParse(opts);
  if (!o.ok) throw new Error(o.error);
  const d = driveNew(m, o.value);
  if (!d.ok) throw new Error(d.error);
  return { m, blk: d.value.blk };
}

const now = (m: LoopMachine): number => qemuClockGetNs(m.clocks, QEMU_CLOCK_REALTIME);

describe('asynchronous requests', () => {
  it('complete after fixed + per-byte latency, in order, and count in flight until then', () => {
    const { m, blk } = machineWithDrive();
    blockState(m).latency = { fixedNs: 10_000, nsPerMiB: 1_000_000, flushNs: 50_000 };
    const done: Array<[string, number, number]> = [];
    const cb = (opaque: unknown, ret: number): void => void done.push([opaque as string, ret, now(m)]);
    const data = new Uint8Array(1 << 20).fill(0x42);
    blkAioPwritev(m, blk, 0, data, cb, 'w1');
    const buf = new Uint8Array(4096);
    blkAioPreadv(m, blk, 0, buf, cb, 'r1');
    blkAioFlush(m, blk, cb, 'f1');
    expect(bdrvInFlightAll(m)).toBe(3);
    expect([blk.inFlight, blk.root!.inFlight]).toEqual([3, 3]);
    expect(done).toEqual([]);
    // Due at 1.010 ms (1 MiB write: 10 µs + 1 ms), 1.023906 ms (the read queues behind it) and
    // 1.083906 ms (flush +60 µs). The main loop wakes for aio-context timers with GLib's
    // millisecond timeout rounded up (aio_ctx_prepare), so all three complete at 2 ms, in order.
    runUntil(m, () => done.length === 3);
    expect(done).toEqual([['w1', 0, 2_000_000], ['r1', 0, 2_000_000], ['f1', 0, 2_000_000]]);
    expect(buf.every((x) => x === 0x42)).toBe(true);
    expect(bdrvInFlightAll(m)).toBe(0);
    expect(blk.root!.stats).toMatchObject({ wrBytes: 1 << 20, rdBytes: 4096, wrOperations: 1, rdOperations: 1, flushOperations: 1 });
  });

  it('writes the data into the image before the callback runs', () => {
    const { m, blk } = machineWithDrive();
    let seen = -1;
    blkAioPwritev(m, blk, 65536, new Uint8Array(512).fill(9), () => {
      const b = new Uint8Array(512);
      blkPread(blk, 65536, b);
      seen = b[511]!;
    });
    runUntil(m, () => seen >= 0);
    expect(seen).toBe(9);
  });

  it('reports range, read-only and no-medium errors through the callback', () => {
    const { m, blk } = machineWithDrive();
    const ro = machineWithDrive('file=d.qcow2,format=qcow2,if=none,id=ro,read-only=on');
    const empty = blkNew(m, 'empty', null);
    if (!empty.ok) throw new Error(empty.error);
    const rets: number[] = [];
    const cb = (_o: unknown, ret: number): void => void rets.push(ret);
    blkAioPreadv(m, blk, (16 << 20) - 100, new Uint8Array(200), cb);
    blkAioPreadv(m, empty.value, 0, new Uint8Array(1), cb);
    runUntil(m, () => rets.length === 2);
    blkAioPwritev(ro.m, ro.blk, 0, new Uint8Array(1), cb);
    runUntil(ro.m, () => rets.length === 3);
    // The 1-byte read on the empty drive is due 190 ns before the 200-byte one.
    expect(rets).toEqual([-ENOMEDIUM, -EIO, -EPERM]);
  });

  it('zero writes and discards complete like writes and read back as zero', () => {
    const { m, blk } = machineWithDrive('file=d.qcow2,format=qcow2,if=none,id=d0,discard=unmap');
    let n = 0;
    const cb = (): void => void n++;
    blkAioPwritev(m, blk, 0, new Uint8Array(3 << 16).fill(1), cb);
    blkAioPwriteZeroes(m, blk, 1000, 2000, false, cb);
    blkAioPdiscard(m, blk, 65536, 65536, cb);
    runUntil(m, () => n === 3);
    const b = new Uint8Array(3 << 16);
    blkPread(blk, 0, b);
    expect([b[999], b[1000], b[2999], b[3000], b[65535], b[65536], b[131071], b[131072]]).toEqual([1, 0, 0, 1, 1, 0, 0, 1]);
  });

  it('ignores discards unless the drive has discard=unmap', () => {
    const { m, blk } = machineWithDrive();
    let n = 0;
    blkAioPwritev(m, blk, 0, new Uint8Array(65536).fill(1), () => void n++);
    blkAioPdiscard(m, blk, 0, 65536, () => void n++);
    runUntil(m, () => n === 2);
    const b = new Uint8Array(1);
    blkPread(blk, 0, b);
    expect(b[0]).toBe(1);
  });
});

describe('drain and flush', () => {
  it('bdrv_drain_all advances virtual time to each completion; requests submitted meanwhile start at its end', () => {
    const { m, blk } = machineWithDrive();
    const order: string[] = [];
    blkAioPwritev(m, blk, 0, new Uint8Array(2 << 20), () => {
      order.push('w');
      // Submitted while drained: it waits for the drained section to end (blk_wait_while_drained).
      blkAioPreadv(m, blk, 0, new Uint8Array(512), () => void order.push('r2'));
    });
    blkAioPreadv(m, blk, 4096, new Uint8Array(512), () => void order.push('r'));
    const t0 = now(m);
    bdrvDrainAll(m);
    expect(order).toEqual(['w', 'r']);
    expect(now(m) - t0).toBe(20_000 + 2_000_000 + 20_000 + 488);
    expect(bdrvInFlightAll(m)).toBe(1);
    bdrvDrainAll(m);
    expect(order).toEqual(['w', 'r', 'r2']);
    expect(bdrvInFlightAll(m)).toBe(0);
    expect(now(m) - t0).toBe(20_000 + 2_000_000 + 20_000 + 488 + 20_000 + 488);
  });

  it('a drain with requests in flight shows in the trace: submission, drain, completion', () => {
    const { m, blk } = machineWithDrive(undefined, 2);
    blkAioPwritev(m, blk, 0, new Uint8Array(4096), () => {});
    bdrvDrainAll(m);
    bdrvDrainAll(m); // nothing in flight: no trace
    const names = (m.trace.records ?? []).filter((r) => r.kind === 'event').map((r) => `${r.name} ${JSON.stringify(r.args)}`);
    expect(names).toEqual([
      'blk_aio_pwritev {"blk":"d0","id":1,"offset":0,"bytes":4096}',
      'bdrv_drain_all_begin {"in_flight":1}',
      'blk_aio_complete {"blk":"d0","id":1,"kind":"write","ret":0}',
    ]);
  });

  it('a completion callback may drain (vm_stop from a callback): later requests still complete in order, on time', () => {
    const { m, blk } = machineWithDrive();
    const log: Array<[string, number]> = [];
    blkAioPreadv(m, blk, 0, new Uint8Array(512), () => {
      log.push(['a', now(m)]);
      bdrvDrainAll(m);
    });
    blkAioPreadv(m, blk, 0, new Uint8Array(512), () => void log.push(['b', now(m)]));
    blkAioPreadv(m, blk, 0, new Uint8Array(512), () => void log.push(['c', now(m)]));
    bdrvDrainAll(m);
    expect(log).toEqual([['a', 20_488], ['b', 40_976], ['c', 61_464]]);
  });

  it('requests submitted inside a drained section start when it ends', () => {
    const { m, blk } = machineWithDrive();
    bdrvDrainAllBegin(m);
    let ret = 1;
    blkAioPwritev(m, blk, 0, new Uint8Array(512).fill(3), (_o, r) => void (ret = r));
    expect(bdrvInFlightAll(m)).toBe(0);
    runFor(m, 10_000_000); // nothing completes while drained
    expect(ret).toBe(1);
    bdrvDrainAllEnd(m);
    expect(bdrvInFlightAll(m)).toBe(1);
    bdrvDrainAll(m);
    expect(ret).toBe(0);
  });

  it('reports a drain that cannot finish instead of hanging', () => {
    const { m, blk } = machineWithDrive();
    blkAioFlush(m, blk, () => {});
    timerDel(blk.timer!); // sabotage: nothing will ever complete the flush
    expect(() => bdrvDrainAll(m)).toThrow(BlockDrainLimitError);
  });

  it('bdrv_flush_all flushes every writable drive and reports the first error', () => {
    const { m } = machineWithDrive();
    expect(bdrvFlushAll(m)).toBe(0);
    const bs = blockState(m).backends[0]!.root!;
    const orig = bs.drv;
    bs.drv = { ...orig, flush: () => { throw Object.assign(new Error('Input/output error'), { name: 'BlockError', errno: EIO }); } };
    expect(bdrvFlushAll(m)).toBe(-EIO);
    bs.drv = orig;
  });
});
