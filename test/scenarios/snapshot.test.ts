// savevm / loadvm / delvm / info snapshots on a virt machine with virtio-blk disks (qcow2 in
// memory): the guest's output and its guest-visible trace after loadvm repeat what followed the
// savevm, byte for byte; a savevm with disk requests in flight drains them inside do_vm_stop;
// loadvm is atomic (a bad stream, a disk-only snapshot or a disk that cannot be reverted leave
// the machine's state hash unchanged, with QEMU's texts); -loadvm at start-up; automatic names
// in the host's local time; tag completion; the diskless errors. Method: guests/bin/disk.elf and
// demo.elf driven through vm.hmp() in virtual time; SEED varies the savevm point.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../index.ts';
import {
  bdrvAllCreateSnapshot, bdrvAllFindVmstateBs, bdrvInFlightAll, bdrvSaveVmstate, bdrvSnapshotList, bdrvSnapshotLoadVmstate,
  blockState, qcow2Of,
} from '../../core/block/index.ts';
import { snapshotCompletionTags } from '../../core/snapshot/index.ts';
import { prngCreate, prngInt } from '../../core/util/index.ts';
import { GUEST_DEMO, diskMachine, guestTrace, memImages, stateHash } from './snapshot-support.ts';

const SEED = Number(process.env.SEED ?? 1);

describe(`savevm, run on, loadvm (seed ${SEED})`, () => {
  function scenario(): { out1: string; out2: string; tr1: string; tr2: string; hash: string; savedInFlight: number } {
    const vm = diskMachine(memImages(1), 1, undefined, { trace: 2 });
    const rng = prngCreate(SEED);
    vm.runFor(20_000_000 + prngInt(rng, 40_000_000));
    vm.runUntil(() => bdrvInFlightAll(vm.kernel) > 0);
    const savedInFlight = bdrvInFlightAll(vm.kernel);
    expect(vm.hmp('savevm s1')).toBe('');
    const c1 = vm.console.text().length;
    const t1 = vm.trace.records().length;
    vm.runFor(150_000_000);
    const out1 = vm.console.text().slice(c1);
    const tr1 = guestTrace(vm.trace.records().slice(t1));
    expect(vm.hmp('loadvm s1')).toBe('');
    const c2 = vm.console.text().length;
    const t2 = vm.trace.records().length;
    vm.runFor(150_000_000);
    const out2 = vm.console.text().slice(c2);
    const tr2 = guestTrace(vm.trace.records().slice(t2));
    return { out1, out2, tr1, tr2, hash: vm.trace.hash(), savedInFlight };
  }

  it('the serial output after loadvm repeats what followed savevm, and so does the guest-visible trace', () => {
    const a = scenario();
    expect(a.savedInFlight).toBeGreaterThan(0);
    expect(a.out1).toMatch(/disk: \d+ requests, read hash [0-9a-f]{8}\r\n/);
    expect(a.out2).toBe(a.out1);
    expect(a.tr2).toBe(a.tr1);
    // The whole run, savevm and loadvm included, is deterministic.
    expect(scenario().hash).toBe(a.hash);
  }, 120_000);

  it('savevm drains the requests in flight inside do_vm_stop, before the state is saved', () => {
    const vm = diskMachine(memImages(1), 1, undefined, { trace: 1 });
    vm.runFor(30_000_000);
    vm.runUntil(() => bdrvInFlightAll(vm.kernel) >= 2);
    const from = vm.trace.records().length;
    vm.hmp('savevm s1');
    const names = vm.trace.records().slice(from).map((r) => `${r.kind} ${r.name}`);
    const at = (n: string): number => names.indexOf(n);
    expect(at('enter save_snapshot')).toBeGreaterThanOrEqual(0);
    expect(at('enter do_vm_stop')).toBeGreaterThan(at('enter save_snapshot'));
    expect(at('event bdrv_drain_all_begin')).toBeGreaterThan(at('enter do_vm_stop'));
    const completed = names.indexOf('enter blk_aio_complete', at('event bdrv_drain_all_begin'));
    expect(completed).toBeGreaterThan(at('event bdrv_drain_all_begin'));
    expect(completed).toBeLessThan(at('exit do_vm_stop'));
    expect(at('enter qemu_savevm_state')).toBeGreaterThan(at('exit do_vm_stop'));
    expect(names.filter((n) => n === 'event qapi_event_send')).toHaveLength(2); // STOP, RESUME
  }, 60_000);

  it('stop drains the guest\'s requests in flight inside do_vm_stop, then flushes; cont carries on', () => {
    const vm = diskMachine(memImages(1), 1, undefined, { trace: 1 });
    vm.runFor(30_000_000);
    vm.runUntil(() => bdrvInFlightAll(vm.kernel) >= 2);
    const from = vm.trace.records().length;
    expect(vm.hmp('stop')).toBe('');
    expect(bdrvInFlightAll(vm.kernel)).toBe(0);
    const recs = vm.trace.records().slice(from);
    const names = recs.map((r) => `${r.kind} ${r.name}`);
    const at = (n: string, after = 0): number => names.indexOf(n, after);
    // The chain of QEMU 7.2's hmp_stop: vm_stop -> do_vm_stop -> (runstate, vCPUs paused,
    // vm_state_notify, STOP) -> bdrv_drain_all -> bdrv_flush_all.
    const stop = at('enter do_vm_stop', at('enter hmp_stop'));
    const begin = at('event bdrv_drain_all_begin', stop);
    const drained = at('exit bdrv_drain_all', begin);
    const flush = at('enter bdrv_flush_all', drained);
    expect([stop > 0, at('event qapi_event_send', stop) < begin, begin > stop, drained > begin, flush > drained]).toEqual([true, true, true, true, true]);
    expect(at('exit do_vm_stop', flush)).toBeGreaterThan(flush);
    const inFlight = recs[begin]!.args!['in_flight'] as number;
    expect(inFlight).toBeGreaterThanOrEqual(2);
    const completions = names.slice(begin, drained).filter((n) => n === 'enter blk_aio_complete');
    expect(completions).toHaveLength(inFlight); // each request completes in the drain, none after
    // The guest, resumed, sees its requests done and goes on (the run stays deterministic).
    const c = vm.console.text().length;
    expect(vm.hmp('cont')).toBe('');
    vm.runFor(150_000_000);
    expect(vm.console.text().slice(c)).toMatch(/disk: \d+ requests, read hash [0-9a-f]{8}\r\n/);
  }, 60_000);
});

describe('info snapshots, delvm, names', () => {
  it('lists snapshots with QEMU 7.2\'s table; savevm without a tag names it in local time', () => {
    const vm = diskMachine(memImages(1), 1, GUEST_DEMO, { utcOffsetSec: 3600 });
    expect(vm.hmp('info snapshots')).toBe('There is no snapshot available.\r\n');
    vm.runFor(1_250_000_000);
    expect(vm.hmp('savevm')).toBe('');
    const text = vm.hmp('info snapshots');
    const lines = text.split('\r\n');
    expect(lines[0]).toBe('List of snapshots present on all disks:');
    expect(lines[1]).toBe('ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT');
    // rtc base 2026-01-01 00:00:00 UTC, 1.25 s later, shown at UTC+1.
    expect(lines[2]).toMatch(/^-- {8}vm-20260101010001 +\d+(\.\d+)? KiB 2026-01-01 01:00:01 00:00:01\.250 {11}$/);
    expect(vm.hmp('savevm s2')).toBe('');
    expect(vm.hmp('delvm vm-20260101010001')).toBe('');
    expect(vm.hmp('delvm nosuch')).toBe('');
    expect(vm.hmp('info snapshots').split('\r\n')[2]).toMatch(/^-- {8}s2 /);
    expect(snapshotCompletionTags(vm.kernel)).toEqual(['s2', '2']);
    expect(vm.monitors.machine.snapshotTags()).toEqual(['s2', '2']);
  });

  it('a machine without a snapshot-capable disk gives QEMU\'s errors; loadvm still stops the VM', () => {
    const vm = diskMachine(memImages(0), 0, GUEST_DEMO);
    vm.runFor(10_000_000);
    expect(vm.hmp('info snapshots')).toBe('no block device can store vmstate for snapshot\r\n');
    expect(vm.hmp('savevm s1')).toBe('Error: no block device can store vmstate for snapshot\r\n');
    expect(vm.hmp('info status')).toBe('VM status: running\r\n');
    expect(vm.hmp('loadvm s1')).toBe('Error: no block device can store vmstate for snapshot\r\n');
    expect(vm.hmp('info status')).toBe('VM status: paused (restore-vm)\r\n');
    expect(vm.hmp('delvm s1')).toBe('');
  });

  it('savevm on a paused VM keeps it paused; loadvm into it keeps it paused', () => {
    const vm = diskMachine(memImages(1), 1, GUEST_DEMO);
    vm.runFor(10_000_000);
    vm.hmp('stop');
    const events: string[] = [];
    vm.events.on('event', (e) => void events.push(e.event));
    expect(vm.hmp('savevm p1')).toBe('');
    expect(vm.hmp('loadvm p1')).toBe('');
    expect(vm.hmp('info status')).toBe('VM status: paused\r\n');
    expect(events).toEqual([]);
  });
});

describe('atomic loadvm', () => {
  /** A stopped machine with a good snapshot and three whose VM state is broken. */
  function withBadSnapshots(): ReturnType<typeof diskMachine> {
    const vm = diskMachine(memImages(1), 1);
    vm.runFor(40_000_000);
    expect(vm.hmp('savevm good')).toBe('');
    const m = vm.kernel;
    const bs = bdrvAllFindVmstateBs(m);
    if (!bs.ok) throw new Error(bs.error);
    const good = bdrvSnapshotList(bs.value);
    if (!good.ok) throw new Error(good.error);
    const size = good.value[0]!.vmStateSize;
    const stream = bdrvSnapshotLoadVmstate(bs.value, 'good', 0, size);
    if (!stream.ok) throw new Error(stream.error);
    const make = (name: string, bytes: Uint8Array): void => {
      expect(bdrvSaveVmstate(bs.value, 0, bytes).ok).toBe(true);
      const info = { idStr: '', name, vmStateSize: 0, dateSec: 0, dateNsec: 0, vmClockNsec: 0, icount: -1 };
      expect(bdrvAllCreateSnapshot(m, info, bs.value, bytes.length).ok).toBe(true);
    };
    make('garbage', new Uint8Array(4096).fill(0x5a));
    make('truncated', stream.value.slice(0, Math.floor(size / 2)));
    const flipped = stream.value.slice();
    flipped[8] = flipped[8]! ^ 0xff; // the configuration section's marker
    make('flipped', flipped);
    vm.runFor(30_000_000);
    vm.hmp('stop');
    return vm;
  }

  it('a snapshot whose VM state does not load leaves the machine as it was, with QEMU\'s texts', () => {
    const vm = withBadSnapshots();
    const before = stateHash(vm);
    expect(vm.hmp('loadvm garbage')).toBe('Not a migration stream\r\nError: Error -22 while loading VM state\r\n');
    expect(stateHash(vm)).toBe(before);
    expect(vm.hmp('loadvm truncated')).toMatch(/\r\nError: Error -\d+ while loading VM state\r\n$/);
    expect(stateHash(vm)).toBe(before);
    expect(vm.hmp('loadvm flipped')).toBe('Configuration section missing\r\nError: Error -22 while loading VM state\r\n');
    expect(stateHash(vm)).toBe(before);
    // loadvm stopped nothing: the VM was paused before (from a running VM it stays in restore-vm).
    expect(vm.hmp('info status')).toBe('VM status: paused\r\n');
    // It goes on exactly as a twin that never tried the bad snapshots.
    const twin = withBadSnapshots();
    expect(stateHash(twin)).toBe(before);
    const c = [vm.console.text().length, twin.console.text().length];
    vm.hmp('cont');
    twin.hmp('cont');
    vm.runFor(100_000_000);
    twin.runFor(100_000_000);
    expect(vm.console.text().slice(c[0])).toBe(twin.console.text().slice(c[1]));
    expect(vm.console.text().slice(c[0])).toMatch(/requests, read hash/);
    expect(vm.hmp('loadvm good')).toBe('');
  }, 60_000);

  it('a disk-only snapshot and a missing tag are refused before anything changes', () => {
    const vm = diskMachine(memImages(1), 1, GUEST_DEMO);
    vm.runFor(10_000_000);
    const r = bdrvAllCreateSnapshot(vm.kernel, { idStr: '', name: 'diskonly', vmStateSize: 0, dateSec: 0, dateNsec: 0, vmClockNsec: 0, icount: -1 }, null, 0);
    expect(r.ok).toBe(true);
    vm.hmp('stop');
    const before = stateHash(vm);
    expect(vm.hmp('loadvm diskonly')).toBe('Error: This is a disk-only snapshot. Revert to it  offline using qemu-img\r\n');
    expect(vm.hmp('loadvm nosuch')).toBe("Error: Snapshot 'nosuch' does not exist in one or more devices\r\n");
    expect(stateHash(vm)).toBe(before);
  });

  it('when a later disk cannot be reverted, the earlier ones are put back', () => {
    const vm = diskMachine(memImages(2), 2);
    vm.runFor(40_000_000);
    expect(vm.hmp('savevm s1')).toBe('');
    vm.runFor(60_000_000);
    vm.hmp('stop');
    // Make d1's copy of s1 unreadable: its L1 table offset no longer cluster aligned.
    const d1 = blockState(vm.kernel).backends[1]!.root!;
    const s = qcow2Of(d1);
    s.snapshots.find((sn) => sn.name === 's1')!.l1TableOffset += 8;
    const before = stateHash(vm);
    const lists = (): string => JSON.stringify(blockState(vm.kernel).backends.map((b) => {
      const l = bdrvSnapshotList(b.root!);
      return l.ok ? l.value.map((sn) => sn.name) : [];
    }));
    const listed = lists();
    expect(vm.hmp('loadvm s1')).toBe("Error: Could not load snapshot 's1' on 'd1': Failed to load snapshot: Invalid argument\r\n");
    expect(stateHash(vm)).toBe(before);
    expect(lists()).toBe(listed);
  }, 60_000);
});

describe('-loadvm', () => {
  it('starts a new machine from a snapshot: it prints what the saved one printed after savevm', () => {
    const files = memImages(1);
    const a = diskMachine(files, 1);
    a.runFor(50_000_000);
    expect(a.hmp('savevm boot')).toBe('');
    const c = a.console.text().length;
    a.runFor(150_000_000);
    const after = a.console.text().slice(c);
    a.close();
    const b = diskMachine(files, 1, undefined, { loadvm: 'boot' });
    b.runFor(150_000_000);
    expect(b.console.text()).toBe(after);
    expect(() => diskMachine(files, 1, undefined, { loadvm: 'nosuch' }))
      .toThrow(new ConfigError("Snapshot 'nosuch' does not exist in one or more devices"));
  }, 60_000);
});
