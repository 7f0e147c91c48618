// Crash safety of qcow2 updates. A seeded run of guest writes and snapshot operations is
// replayed once per write count N with the process "killed" before its (N+1)th pwrite; the
// image is then reopened and must: pass the check with no corruption (and no leak at all when
// a snapshot operation was interrupted, since those commit atomically), list every snapshot
// completed before the kill with its disk and vmstate intact, and hold either the old or the
// new state for the interrupted operation. A second pass models power loss: at each kill point
// the writes since the last flush survive at random, which tests the flush barriers.
import { describe, expect, it } from 'vitest';
import {
  type MemFileData, type Qcow2State, memFileBytes, qcow2Check, qcow2LoadVmstate, qcow2Open, qcow2Pread,
  qcow2Pwrite, qcow2SaveVmstate, qcow2SnapshotCreate, qcow2SnapshotDelete, qcow2SnapshotGoto, qcow2ZeroClusters,
  qcow2SnapshotList, memBlockFileOpen,
} from '../../../core/block/index.ts';
import { type PrngState, prngInt } from '../../../core/util/index.ts';
import { Killed, SEED, firstDiff, killFile, memData, memQcow2, powerFile, randomBytes, randomRange, rngFor } from './support.ts';

interface Cfg {
  size: number;
  cluster: number;
  ops: number;
}

type Op =
  | { kind: 'write'; off: number; data: Uint8Array }
  | { kind: 'zero'; off: number; data: Uint8Array; unmap: boolean }
  | { kind: 'snap'; name: string; vm: Uint8Array }
  | { kind: 'goto'; name: string }
  | { kind: 'delete'; name: string };

interface Expect {
  disk: Uint8Array;
  snaps: Map<string, { disk: Uint8Array; vm: Uint8Array }>;
}

function makeOps(cfg: Cfg, rng: PrngState): Op[] {
  const ops: Op[] = [];
  const names: string[] = [];
  let n = 0;
  for (let i = 0; i < cfg.ops; i++) {
    const k = prngInt(rng, 10);
    if (k < 4) {
      const [off, len] = randomRange(rng, cfg.size, 6 * cfg.cluster);
      ops.push({ kind: 'write', off, data: randomBytes(rng, len) });
    } else if (k < 5) {
      const [off, len] = randomRange(rng, cfg.size, 6 * cfg.cluster);
      ops.push({ kind: 'zero', off, data: new Uint8Array(len), unmap: prngInt(rng, 2) === 0 });
    } else if (k < 7 || names.length === 0) {
      const name = `s${n++}`;
      names.push(name);
      ops.push({ kind: 'snap', name, vm: randomBytes(rng, 1 + prngInt(rng, 3 * cfg.cluster)) });
    } else if (k < 9) {
      ops.push({ kind: 'goto', name: names[prngInt(rng, names.length)]! });
    } else {
      const name = names.splice(prngInt(rng, names.length), 1)[0]!;
      ops.push({ kind: 'delete', name });
    }
  }
  return ops;
}

function apply(s: Qcow2State, op: Op): void {
  switch (op.kind) {
    case 'write':
      qcow2Pwrite(s, op.off, op.data);
      return;
    case 'zero':
      qcow2ZeroClusters(s, op.off, op.data.length, op.unmap ? 'zero-unmap' : 'zero');
      return;
    case 'snap':
      qcow2SaveVmstate(s, 0, op.vm);
      qcow2SnapshotCreate(s, { idStr: '', name: op.name, vmStateSize: op.vm.length, dateSec: 1, dateNsec: 0, vmClockNsec: 0, icount: -1 });
      return;
    case 'goto':
      qcow2SnapshotGoto(s, op.name);
      return;
    case 'delete':
      qcow2SnapshotDelete(s, null, op.name);
  }
}

/** The expected state after each op (index i: after ops[0..i-1]). */
function expectations(cfg: Cfg, ops: Op[]): Expect[] {
  const out: Expect[] = [{ disk: new Uint8Array(cfg.size), snaps: new Map() }];
  for (const op of ops) {
    const prev = out[out.length - 1]!;
    const next: Expect = { disk: prev.disk.slice(), snaps: new Map(prev.snaps) };
    if (op.kind === 'write' || op.kind === 'zero') next.disk.set(op.data, op.off);
    if (op.kind === 'snap') next.snaps.set(op.name, { disk: prev.disk.slice(), vm: op.vm });
    if (op.kind === 'goto') next.disk.set(prev.snaps.get(op.name)!.disk);
    if (op.kind === 'delete') next.snaps.delete(op.name);
    out.push(next);
  }
  return out;
}

function readDisk(s: Qcow2State): Uint8Array {
  const b = new Uint8Array(s.size);
  qcow2Pread(s, 0, b);
  return b;
}

/** Every expected snapshot is listed and, loaded into a copy of the image, has its contents. */
function verifySnapshots(image: Uint8Array, snaps: Expect['snaps'], what: string): void {
  const s = qcow2Open(memBlockFileOpen('x', memData(image), true), { readOnly: true });
  expect(qcow2SnapshotList(s).map((x) => x.name).sort(), what).toEqual([...snaps.keys()].sort());
  for (const [name, want] of snaps) {
    const copy = qcow2Open(memBlockFileOpen('y', memData(image)), { readOnly: false });
    qcow2SnapshotGoto(copy, name);
    expect(firstDiff(readDisk(copy), want.disk), `${what}: disk of ${name}`).toBe(-1);
    const vm = new Uint8Array(want.vm.length);
    qcow2LoadVmstate(copy, 0, vm);
    expect(firstDiff(vm, want.vm), `${what}: vmstate of ${name}`).toBe(-1);
  }
}

/** Run ops on a file that dies after `budget` writes; returns the index of the killed op or -1. */
function runUntilKilled(start: Uint8Array, ops: Op[], file: (d: MemFileData) => ReturnType<typeof killFile>): { killedAt: number; d: MemFileData } {
  const d = memData(start);
  const f = file(d);
  const s = qcow2Open(f, { readOnly: false });
  for (let i = 0; i < ops.length; i++) {
    try {
      apply(s, ops[i]!);
    } catch (e) {
      if (e instanceof Killed) return { killedAt: i, d };
      throw e;
    }
  }
  return { killedAt: -1, d };
}

function sameSnapshotSet(image: Uint8Array): string[] {
  const s = qcow2Open(memBlockFileOpen('z', memData(image), true), { readOnly: true });
  return qcow2SnapshotList(s).map((x) => x.name).sort();
}

describe.each([
  { size: 256 << 10, cluster: 1024, ops: 40 },
  { size: 384 << 10, cluster: 512, ops: 24 },
])('qcow2 crash safety ($cluster-byte clusters)', (cfg) => {
  const ops = makeOps(cfg, rngFor(`crash-ops-${cfg.cluster}`));
  const exp = expectations(cfg, ops);
  const { p, name } = memQcow2(cfg.size, { clusterSize: cfg.cluster });
  const start = memFileBytes(p.files.get(name)!);
  // Count the writes of an uninterrupted run.
  const counting = killFile('count', memData(start), Number.MAX_SAFE_INTEGER);
  const full = qcow2Open(counting, { readOnly: false });
  for (const op of ops) apply(full, op);
  const total = counting.writes();

  it(`a kill before any write leaves every earlier snapshot intact (seed ${SEED}, ${total} writes)`, () => {
    expect(total).toBeGreaterThan(100);
    for (let budget = 0; budget <= total; budget++) {
      const { killedAt, d } = runUntilKilled(start, ops, (dd) => killFile('k', dd, budget));
      const image = d.bytes.slice(0, d.length);
      const at = killedAt < 0 ? ops.length : killedAt;
      const what = `seed ${SEED} kill before write ${budget + 1} (op ${at}: ${ops[at]?.kind ?? 'end'})`;
      const s = qcow2Open(memBlockFileOpen('r', memData(image)), { readOnly: false });
      const r = qcow2Check(s);
      expect([r.corruptions, r.checkErrors], `${what}: ${r.messages.join('; ')}`).toEqual([0, 0]);
      const op = ops[at];
      if (op && (op.kind === 'goto' || op.kind === 'delete')) expect(r.leaks, `${what}: leaks`).toBe(0);
      verifySnapshots(image, exp[at]!.snaps, what);
      const disk = readDisk(s);
      if (op?.kind === 'write' || op?.kind === 'zero') {
        const before = exp[at]!.disk;
        for (let i = 0; i < cfg.size; i++) {
          const inRange = i >= op.off && i < op.off + op.data.length;
          if (disk[i] !== before[i] && !(inRange && disk[i] === op.data[i - op.off])) {
            expect.fail(`${what}: byte ${i} is ${disk[i]}, neither old ${before[i]} nor new`);
          }
        }
      } else {
        expect(firstDiff(disk, exp[at]!.disk), `${what}: active disk`).toBe(-1);
      }
      // The recovered image keeps working.
      qcow2Pwrite(s, 0, new Uint8Array(3000).fill(0x5a));
      qcow2SnapshotCreate(s, { idStr: '', name: 'after', vmStateSize: 0, dateSec: 0, dateNsec: 0, vmClockNsec: 0, icount: -1 });
      const r2 = qcow2Check(s);
      expect(r2.corruptions, `${what}: after recovery`).toBe(0);
    }
  });

  it(`power loss keeps every flushed snapshot and a consistent image (seed ${SEED})`, () => {
    const lossRng = rngFor('power');
    for (let budget = 0; budget <= total; budget += 3) {
      let pf: ReturnType<typeof powerFile> | null = null;
      const { killedAt } = runUntilKilled(start, ops, (dd) => {
        const k = killFile('k', dd, budget);
        pf = powerFile('p', dd);
        return { ...pf, writes: k.writes, pwrite: (o: number, b: Uint8Array) => { k.pwrite(o, new Uint8Array(0)); pf!.pwrite(o, b); } };
      });
      const at = killedAt < 0 ? ops.length : killedAt;
      const image = pf!.crashImage(lossRng);
      const what = `seed ${SEED} power loss before write ${budget + 1} (op ${at})`;
      const s = qcow2Open(memBlockFileOpen('r', memData(image)), { readOnly: false });
      const r = qcow2Check(s);
      expect([r.corruptions, r.checkErrors], `${what}: ${r.messages.join('; ')}`).toEqual([0, 0]);
      const names = sameSnapshotSet(image);
      const before = [...exp[at]!.snaps.keys()].sort();
      const after = [...(exp[at + 1] ?? exp[at]!).snaps.keys()].sort();
      expect([before, after], what).toContainEqual(names);
      verifySnapshots(image, names.join() === before.join() ? exp[at]!.snaps : exp[at + 1]!.snaps, what);
    }
  });
});
