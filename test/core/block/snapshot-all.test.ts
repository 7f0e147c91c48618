// The machine-wide snapshot helpers savevm/loadvm/delvm use (block/snapshot.c, 7.2): which nodes
// take part, where the vmstate goes, create/has/goto/delete on every disk with QEMU's error
// texts, and the vmstate area read back. Method: two qcow2 drives and a raw one on a bare loop
// machine with in-memory files.
import { describe, expect, it } from 'vitest';
import {
  type BlockBackend, bdrvAllCanSnapshot, bdrvAllCreateSnapshot, bdrvAllDeleteSnapshot, bdrvAllFindVmstateBs,
  bdrvAllGotoSnapshot, bdrvAllHasSnapshot, bdrvLoadVmstate, bdrvSaveVmstate, bdrvSnapshotFind, bdrvSnapshotList,
  blkPread, blkPwrite, blockSetIo, blockState, driveNew, driveParse, memBlockFileProviderCreate, qcow2Create,
  SNAPSHOT_DUMP_HEADER, bdrvSnapshotDump, sizeToStr, formatDateTime, type QEMUSnapshotInfo, ENOTSUP,
  hmpInfoSnapshotsText, bdrvSnapshotLoadVmstate,
} from '../../../core/block/index.ts';
import { loopMachineCreate, type LoopMachine } from '../../../core/loop/index.ts';

function setup(drives: string[]): { m: LoopMachine; blks: BlockBackend[] } {
  const m = loopMachineCreate();
  const p = memBlockFileProviderCreate();
  for (const n of ['a.qcow2', 'b.qcow2']) {
    const f = p.create(n);
    qcow2Create(f, { size: 4 << 20 });
    f.close();
  }
  p.create('r.raw').pwrite(0, new Uint8Array(1 << 20));
  blockSetIo(m, p);
  const blks = drives.map((d) => {
    const o = driveParse(d);
    if (!o.ok) throw new Error(o.error);
    const r = driveNew(m, o.value);
    if (!r.ok) throw new Error(r.error);
    return r.value.blk;
  });
  return { m, blks };
}

const SN: QEMUSnapshotInfo = { idStr: '', name: 'snap0', vmStateSize: 0, dateSec: 1_767_225_600, dateNsec: 0, vmClockNsec: 12_345_678_901, icount: -1 };
const A = 'file=a.qcow2,format=qcow2,if=none,id=d0,node-name=disk0';
const B = 'file=b.qcow2,format=qcow2,if=none,id=d1,node-name=disk1';
const R = 'file=r.raw,format=raw,if=none,id=r0';

describe('snapshots across drives', () => {
  it('without a snapshot-capable drive there is nowhere to put the vmstate', () => {
    expect(bdrvAllFindVmstateBs(setup([]).m)).toEqual({ ok: false, errno: ENOTSUP, error: 'no block device can store vmstate for snapshot' });
    expect(bdrvAllFindVmstateBs(setup([`${R},read-only=on`]).m).ok).toBe(false);
  });

  it('a writable raw drive blocks snapshots; a read-only one is left out', () => {
    expect(bdrvAllCanSnapshot(setup([A, R]).m)).toEqual({ ok: false, errno: ENOTSUP, error: "Device 'r0' is writable but does not support snapshots" });
    expect(bdrvAllCanSnapshot(setup([A, `${R},read-only=on`]).m)).toEqual({ ok: true, value: undefined });
  });

  it('create puts the vmstate size on the vmstate drive only; goto reverts every disk', () => {
    const { m, blks } = setup([A, B]);
    const vm = bdrvAllFindVmstateBs(m);
    if (!vm.ok) throw new Error(vm.error);
    expect(vm.value.nodeName).toBe('disk0');
    const state = new Uint8Array(70_000).map((_, i) => i & 0xff);
    expect(bdrvSaveVmstate(vm.value, 0, state).ok).toBe(true);
    blkPwrite(blks[0]!, 0, new Uint8Array(512).fill(1));
    blkPwrite(blks[1]!, 0, new Uint8Array(512).fill(2));
    expect(bdrvAllCreateSnapshot(m, SN, vm.value, state.length)).toEqual({ ok: true, value: ['1', '1'] });
    blkPwrite(blks[0]!, 0, new Uint8Array(512).fill(3));
    blkPwrite(blks[1]!, 0, new Uint8Array(512).fill(4));
    const sizes = blks.map((b) => bdrvSnapshotList(b.root!)).map((r) => (r.ok ? r.value.map((x) => x.vmStateSize) : r.error));
    expect(sizes).toEqual([[70_000], [0]]);
    expect(bdrvAllHasSnapshot(m, 'snap0')).toEqual({ ok: true, value: true });
    expect(bdrvAllHasSnapshot(m, 'nosuch')).toEqual({ ok: true, value: false });
    // 7.2's bdrv_snapshot_find matches names only: the id does not count.
    expect(bdrvAllHasSnapshot(m, '1')).toEqual({ ok: true, value: false });
    // The snapshot's VM state can be read before going to it; the active disk is untouched.
    const early = bdrvSnapshotLoadVmstate(vm.value, 'snap0', 1000, 5000);
    expect(early.ok && early.value.every((x, i) => x === ((1000 + i) & 0xff))).toBe(true);
    const still = new Uint8Array(1);
    blkPread(blks[0]!, 0, still);
    expect(still[0]).toBe(3);
    expect(bdrvSnapshotLoadVmstate(vm.value, 'nosuch', 0, 1)).toMatchObject({ ok: false, errno: 2 });
    expect(bdrvAllGotoSnapshot(m, 'snap0').ok).toBe(true);
    const b0 = new Uint8Array(512);
    const b1 = new Uint8Array(512);
    blkPread(blks[0]!, 0, b0);
    blkPread(blks[1]!, 0, b1);
    expect([b0[0], b1[0]]).toEqual([1, 2]);
    const back = bdrvLoadVmstate(vm.value, 0, state.length);
    expect(back.ok && back.value.every((x, i) => x === (i & 0xff))).toBe(true);
    expect(bdrvAllGotoSnapshot(m, 'nosuch')).toEqual({
      ok: false, errno: 2, error: "Could not load snapshot 'nosuch' on 'd0': Failed to load snapshot: No such file or directory",
    });
  });

  it('delete removes the snapshot everywhere and ignores disks without it', () => {
    const { m, blks } = setup([A, B]);
    const vm = bdrvAllFindVmstateBs(m);
    if (!vm.ok) throw new Error(vm.error);
    bdrvAllCreateSnapshot(m, SN, vm.value, 0);
    bdrvAllCreateSnapshot(m, { ...SN, name: 'other' }, vm.value, 0, ['disk1']);
    expect(bdrvSnapshotFind(blks[1]!.root!, 'other')?.idStr).toBe('2');
    expect(bdrvAllHasSnapshot(m, 'other')).toEqual({ ok: true, value: false });
    expect(bdrvAllDeleteSnapshot(m, 'other')).toEqual({ ok: true, value: undefined });
    expect(bdrvAllDeleteSnapshot(m, 'snap0')).toEqual({ ok: true, value: undefined });
    expect(bdrvAllDeleteSnapshot(m, 'nosuch')).toEqual({ ok: true, value: undefined });
    expect(blks.map((b) => bdrvSnapshotList(b.root!))).toEqual([{ ok: true, value: [] }, { ok: true, value: [] }]);
    expect(blockState(m).inFlight).toBe(0);
  });

  it('an explicit vmstate node must exist and support snapshots', () => {
    const { m } = setup([A, `${R},node-name=rawnode`]);
    expect(bdrvAllFindVmstateBs(m, 'nope')).toMatchObject({ ok: false, error: "vmstate block device 'nope' does not exist" });
    expect(bdrvAllFindVmstateBs(m, 'rawnode')).toMatchObject({ ok: false, error: "vmstate block device 'rawnode' does not support snapshots" });
    expect(bdrvAllFindVmstateBs(m, 'disk0')).toMatchObject({ ok: true });
    const raw = blockState(m).backends[1]!.root!;
    expect(bdrvSaveVmstate(raw, 0, new Uint8Array(1))).toMatchObject({ ok: false, errno: ENOTSUP });
  });
});

describe('info snapshots (7.2 hmp_info_snapshots)', () => {
  it('reproduces the transcript: no snapshot, then the global list in table order', () => {
    const { m } = setup([A]);
    expect(hmpInfoSnapshotsText(m)).toEqual({ ok: true, value: 'There is no snapshot available.\n' });
    const vm = bdrvAllFindVmstateBs(m);
    if (!vm.ok) throw new Error(vm.error);
    const save = (name: string, sec: number, clock: number): void => {
      bdrvAllDeleteSnapshot(m, name);
      bdrvAllCreateSnapshot(m, { ...SN, name, dateSec: sec, vmClockNsec: clock }, vm.value, 473_088);
    };
    save('snap1', 1_795_724_471, 464_000_000);
    save('snap2', 1_795_724_471, 554_000_000);
    save('snap1', 1_795_724_471, 613_000_000);
    expect(hmpInfoSnapshotsText(m)).toEqual({
      ok: true,
      value: 'List of snapshots present on all disks:\n'
        + 'ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT\n'
        + '--        snap2             462 KiB 2026-11-26 20:21:11 00:00:00.554           \n'
        + '--        snap1             462 KiB 2026-11-26 20:21:11 00:00:00.613           \n',
    });
  });

  it('lists partial snapshots per disk, and fails without a vmstate disk', () => {
    expect(hmpInfoSnapshotsText(setup([]).m)).toMatchObject({ ok: false, error: 'no block device can store vmstate for snapshot' });
    const { m } = setup([A, B]);
    const vm = bdrvAllFindVmstateBs(m);
    if (!vm.ok) throw new Error(vm.error);
    bdrvAllCreateSnapshot(m, { ...SN, name: 'only1' }, vm.value, 0, ['disk1']);
    expect(hmpInfoSnapshotsText(m)).toEqual({
      ok: true,
      value: 'List of snapshots present on all disks:\nNone\n'
        + "\nList of partial (non-loadable) snapshots on 'd1':\n"
        + 'ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT\n'
        + '1         only1                 0 B 2026-01-01 00:00:00 00:00:12.345           \n',
    });
  });
});

describe('snapshot listing lines (7.2 bdrv_snapshot_dump)', () => {
  it('formats sizes like size_to_str', () => {
    expect([0, 999, 1000, 473_088, 1_048_576, 1_572_864, 1_059_061, 5 * 2 ** 30].map(sizeToStr))
      .toEqual(['0 B', '999 B', '0.977 KiB', '462 KiB', '1 MiB', '1.5 MiB', '1.01 MiB', '5 GiB']);
  });

  it('formats dates without a time zone database', () => {
    expect(formatDateTime(0)).toBe('1970-01-01 00:00:00');
    expect(formatDateTime(1_795_719_671)).toBe('2026-11-26 19:01:11');
    expect(formatDateTime(951_782_400)).toBe('2000-02-29 00:00:00');
    expect(formatDateTime(1_795_719_671, 3600)).toBe('2026-11-26 20:01:11');
  });

  it('matches the transcript layout', () => {
    expect(SNAPSHOT_DUMP_HEADER).toBe('ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT');
    const line = bdrvSnapshotDump({ idStr: '--', name: 'snap1', vmStateSize: 473_088, dateSec: 1_795_724_471, dateNsec: 0, vmClockNsec: 464_000_000, icount: -1 });
    expect(line).toBe('--        snap1             462 KiB 2026-11-26 20:21:11 00:00:00.464           ');
    expect(bdrvSnapshotDump({ ...SN, idStr: '12', vmClockNsec: 3_725_004_000_000, icount: 42 }))
      .toBe('12        snap0                 0 B 2026-01-01 00:00:00 01:02:05.004         42');
  });
});
