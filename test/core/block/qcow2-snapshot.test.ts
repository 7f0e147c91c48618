// qcow2 internal snapshots: create, list, goto and delete with the disk contents and the vmstate
// area checked against reference copies, ids as QEMU assigns them, the extra data fields
// (vm_state_size, disk_size, icount), and the consistency check clean after every operation
// (refcounts equal the number of L1→L2→cluster paths, COPIED exactly where refcount is 1).
// Method: a seeded sequence of writes and snapshot operations on in-memory images.
import { describe, expect, it } from 'vitest';
import {
  type Qcow2State, qcow2Check, qcow2Close, qcow2LoadVmstate, qcow2Pread, qcow2Pwrite, qcow2SaveVmstate,
  qcow2SnapshotCreate, qcow2SnapshotDelete, qcow2SnapshotGoto, qcow2SnapshotList,
} from '../../../core/block/index.ts';
import { prngInt } from '../../../core/util/index.ts';
import { SEED, firstDiff, memQcow2, openRw, randomBytes, randomRange, rngFor } from './support.ts';

function snap(s: Qcow2State, name: string, vmState: Uint8Array | null = null, icount = -1): string {
  if (vmState) qcow2SaveVmstate(s, 0, vmState);
  return qcow2SnapshotCreate(s, {
    idStr: '', name, vmStateSize: vmState?.length ?? 0, dateSec: 1_767_225_600, dateNsec: 5000,
    vmClockNsec: 12_345_000_000, icount,
  });
}

function disk(s: Qcow2State): Uint8Array {
  const b = new Uint8Array(s.size);
  qcow2Pread(s, 0, b);
  return b;
}

function clean(s: Qcow2State, what: string): void {
  const r = qcow2Check(s);
  expect(r.messages, what).toEqual([]);
  expect(r.corruptions + r.leaks + r.checkErrors, what).toBe(0);
}

describe('qcow2 snapshots', () => {
  it('create, write, goto restores the disk; ids count up; list shows the fields', () => {
    const { p, name } = memQcow2(4 << 20, { clusterSize: 4096 });
    const s = openRw(p, name);
    const rng = rngFor('basic');
    const a = randomBytes(rng, 4 << 20);
    qcow2Pwrite(s, 0, a);
    expect(snap(s, 'a', null, 777)).toBe('1');
    clean(s, 'after create');
    const b = randomBytes(rng, 1 << 20);
    qcow2Pwrite(s, 100_000, b);
    expect(snap(s, 'b')).toBe('2');
    clean(s, 'after second create');
    const afterB = disk(s);
    qcow2SnapshotGoto(s, 'a');
    expect(firstDiff(disk(s), a)).toBe(-1);
    clean(s, 'after goto a');
    qcow2SnapshotGoto(s, '2'); // by id
    expect(firstDiff(disk(s), afterB)).toBe(-1);
    clean(s, 'after goto 2');
    expect(qcow2SnapshotList(s)).toEqual([
      { idStr: '1', name: 'a', vmStateSize: 0, dateSec: 1_767_225_600, dateNsec: 5000, vmClockNsec: 12_345_000_000, icount: 777 },
      { idStr: '2', name: 'b', vmStateSize: 0, dateSec: 1_767_225_600, dateNsec: 5000, vmClockNsec: 12_345_000_000, icount: -1 },
    ]);
    qcow2Close(s);
    const again = openRw(p, name);
    expect(qcow2SnapshotList(again).map((x) => [x.idStr, x.name, x.icount])).toEqual([['1', 'a', 777], ['2', 'b', -1]]);
    expect(again.snapshots.map((x) => [x.diskSize, x.extraDataSize])).toEqual([[4 << 20, 24], [4 << 20, 24]]);
  });

  it('delete frees the snapshot\'s clusters and restores COPIED flags; a new id is max + 1', () => {
    const { p, name } = memQcow2(2 << 20, { clusterSize: 4096 });
    const s = openRw(p, name);
    qcow2Pwrite(s, 0, randomBytes(rngFor('del'), 2 << 20));
    const sizeNoSnap = s.file.size();
    snap(s, 'x');
    snap(s, 'y');
    qcow2Pwrite(s, 0, new Uint8Array(1 << 20).fill(9));
    qcow2SnapshotDelete(s, null, 'x');
    clean(s, 'after delete x');
    qcow2SnapshotDelete(s, '2', null);
    clean(s, 'after delete 2');
    expect(qcow2SnapshotList(s)).toEqual([]);
    // Without snapshots every allocated cluster is exclusively active again.
    const r = qcow2Check(s);
    expect(r.allocatedClusters).toBe(512);
    expect(snap(s, 'z')).toBe('1');
    expect(s.file.size()).toBeLessThan(sizeNoSnap * 4);
    expect(() => qcow2SnapshotDelete(s, null, 'nosuch')).toThrow("Can't find the snapshot");
    expect(() => qcow2SnapshotGoto(s, 'nosuch')).toThrow('No such file or directory');
  });

  it('keeps the vmstate in the snapshot, not in the active image; goto brings it back', () => {
    const { p, name } = memQcow2(1 << 20, { clusterSize: 65536 });
    const s = openRw(p, name);
    const rng = rngFor('vmstate');
    const vm1 = randomBytes(rng, 300_000);
    snap(s, 'one', vm1);
    // The active vmstate area reads as zero after the snapshot, as QEMU discards it.
    const active = new Uint8Array(1000);
    qcow2LoadVmstate(s, 0, active);
    expect(active.every((x) => x === 0)).toBe(true);
    const vm2 = randomBytes(rng, 200_000);
    snap(s, 'two', vm2);
    clean(s, 'two vmstates');
    qcow2SnapshotGoto(s, 'one');
    const back1 = new Uint8Array(vm1.length);
    qcow2LoadVmstate(s, 0, back1);
    expect(firstDiff(back1, vm1)).toBe(-1);
    qcow2SnapshotGoto(s, 'two');
    const back2 = new Uint8Array(vm2.length);
    qcow2LoadVmstate(s, 0, back2);
    expect(firstDiff(back2, vm2)).toBe(-1);
    expect(qcow2SnapshotList(s).map((x) => x.vmStateSize)).toEqual([300_000, 200_000]);
    // Overwriting the vmstate after a goto copies on write: the snapshot keeps its own.
    qcow2SaveVmstate(s, 0, new Uint8Array(50_000).fill(3));
    qcow2SnapshotGoto(s, 'two');
    qcow2LoadVmstate(s, 0, back2);
    expect(firstDiff(back2, vm2)).toBe(-1);
    clean(s, 'after vmstate COW');
  });

  it('refuses to load a snapshot of a different disk size with QEMU\'s error', () => {
    const { p, name } = memQcow2(1 << 20, { clusterSize: 4096 });
    const s = openRw(p, name);
    snap(s, 'a');
    s.snapshots[0]!.diskSize = 2 << 20;
    expect(() => qcow2SnapshotGoto(s, 'a')).toThrow('qcow2: Loading snapshots with different disk size is not implemented');
  });

  it(`survives a seeded mix of writes, creates, gotos and deletes (seed ${SEED})`, () => {
    const size = 2 << 20;
    const { p, name } = memQcow2(size, { clusterSize: 1024 });
    let s = openRw(p, name);
    const rng = rngFor('mix');
    const ref = new Uint8Array(size);
    const saved = new Map<string, { disk: Uint8Array; vm: Uint8Array }>();
    let n = 0;
    for (let op = 0; op < 150; op++) {
      const k = prngInt(rng, 10);
      const names = [...saved.keys()];
      if (k < 5) {
        const [off, len] = randomRange(rng, size, 20_000);
        const d = randomBytes(rng, len);
        qcow2Pwrite(s, off, d);
        ref.set(d, off);
      } else if (k < 7 || names.length === 0) {
        const nm = `s${n++}`;
        const vm = randomBytes(rng, prngInt(rng, 5000));
        snap(s, nm, vm);
        saved.set(nm, { disk: ref.slice(), vm });
      } else if (k < 9) {
        const nm = names[prngInt(rng, names.length)]!;
        qcow2SnapshotGoto(s, nm);
        ref.set(saved.get(nm)!.disk);
        const vm = saved.get(nm)!.vm;
        const back = new Uint8Array(vm.length);
        qcow2LoadVmstate(s, 0, back);
        expect(firstDiff(back, vm), `seed ${SEED} op ${op} vmstate of ${nm}`).toBe(-1);
      } else {
        const nm = names[prngInt(rng, names.length)]!;
        qcow2SnapshotDelete(s, null, nm);
        saved.delete(nm);
      }
      expect(firstDiff(disk(s), ref), `seed ${SEED} op ${op}`).toBe(-1);
      clean(s, `seed ${SEED} op ${op}`);
      if (op % 50 === 49) {
        qcow2Close(s);
        s = openRw(p, name);
      }
    }
  });
});
