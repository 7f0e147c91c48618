// The VMState descriptions of the virt machine (core/migration/machine/): registered in QEMU 7.2's
// section order; their vmdesc entries have QEMU's field names, types and sizes (compared with the
// real stream in shared/streams); QEMU's own section bodies parse with them (and a QEMU hart that
// detvm cannot run is refused with QEMU-style messages); every section round-trips (save, load,
// save: identical bytes) with seeded device state; and a machine loaded from a snapshot runs on
// exactly like the original (identical relative traces and state fingerprints).
// Method: whole virt machines running the demo guest, seeded perturbations (SEED from the env).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clockAdvanceSimTo, runFor, runUntil, timerModNs } from '../../../core/loop/index.ts';
import {
  locateVmdesc, migrationLoadVm, migrationSaveVmBytes, qemuFileReaderCreate, vmstateLoadState,
  type MigrationFailure, type SaveStateEntry, type VMStateStaged,
} from '../../../core/migration/index.ts';
import { prngCreate, prngNextU32, type PrngState } from '../../../core/util/index.ts';
import type { VirtMachine } from '../../../core/machine.ts';
import { virtWithSerial } from '../../support/virt.ts';
import { DEMO_ELF, firstDifference, machineStateHash, relativeTrace } from './virt-fixture.ts';

const SEED = Number(process.env.SEED ?? 7);
const STREAM = join(import.meta.dirname, '../../fixtures/qemu-7.2/streams/qemu-7.2-riscv32-virt-16M.mig');
const mig = new Uint8Array(readFileSync(STREAM));
const realDesc = JSON.parse(locateVmdesc(mig)!) as { devices: Array<Record<string, unknown>> };

function demo(smp = 1, trace = false): ReturnType<typeof virtWithSerial> {
  return virtWithSerial(DEMO_ELF, {
    ramBytes: 16 << 20, smp, ...(trace ? { trace: { level: 2, retain: true } } : {}),
  });
}

function save(m: VirtMachine): Uint8Array {
  const r = migrationSaveVmBytes(m);
  if (!(r instanceof Uint8Array)) throw new Error(r.messages.join('\n'));
  return r;
}

function ourDesc(bytes: Uint8Array): { devices: Array<Record<string, unknown>> } {
  return JSON.parse(locateVmdesc(bytes)!) as { devices: Array<Record<string, unknown>> };
}

/** Body offset of a FULL section (after its header) in a stream, searching after `from`. */
function sectionBody(bytes: Uint8Array, name: string, instance: number, from = 0): number {
  const pat = [name.length, ...Buffer.from(name), 0, 0, 0, instance];
  for (let i = from; i < bytes.length - pat.length; i++) {
    if (bytes[i - 5] !== 0x04) continue;
    if (pat.every((b, j) => bytes[i + j] === b)) return i + pat.length + 4;
  }
  throw new Error(`section ${name}/${instance} not found`);
}

function entry(m: VirtMachine, name: string, instance = 0): SaveStateEntry {
  return m.migration.sv.handlers.find((h) => h.idstr === name && h.instanceId === instance)!;
}

function loadBody(se: SaveStateEntry, body: Uint8Array, version: number): { ret: number; msgs: string[]; staged: VMStateStaged } {
  const msgs: string[] = [];
  const staged: VMStateStaged = {};
  const f = qemuFileReaderCreate(body);
  const ret = vmstateLoadState(f, se.vmsd!, staged, se.opaque!, version, (msg) => msgs.push(msg));
  return { ret, msgs, staged };
}

describe('virt sections: order and shape', () => {
  it('registers QEMU 7.2\'s sections in QEMU\'s order', () => {
    const { m } = demo(2);
    const ours = m.migration.sv.handlers.map((h) => `${h.idstr}/${h.instanceId}`);
    expect(ours).toEqual([
      'timer/0', 'ram/0', 'cpu_common/0', 'cpu/0', 'cpu_common/1', 'cpu/1', 'riscv_mtimer/0',
      'riscv_sifive_plic/0', 'serial/0', 'globalstate/0',
    ]);
    // QEMU's real stream lists its devices in the same relative order (detvm has no flash, PCI,
    // RTC, fw_cfg or slirp).
    const real = realDesc.devices.map((d) => `${String(d.name)}/${String(d.instance_id)}`)
      .filter((n) => ours.includes(n));
    expect(real).toEqual(ours.filter((n) => n !== 'ram/0' && !n.endsWith('/1')));
  });

  it('describes each device with QEMU\'s fields (names, types, sizes)', () => {
    const { m } = demo();
    runFor(m, 120_000_000);
    const ours = ourDesc(save(m)).devices;
    const byName = (list: Array<Record<string, unknown>>, n: string) => list.find((d) => d.name === n)!;
    for (const n of ['cpu_common', 'riscv_sifive_plic', 'serial', 'globalstate']) {
      expect(byName(ours, n), n).toEqual(byName(realDesc.devices, n));
    }
    for (const n of ['cpu', 'timer', 'riscv_mtimer']) {
      const a = byName(ours, n);
      const b = byName(realDesc.devices, n);
      expect([a.vmsd_name, a.version, a.fields], n).toEqual([b.vmsd_name, b.version, b.fields]);
    }
    // detvm's hart claims privileged spec 1.12, so it sends QEMU's envcfg subsection; it has no
    // PMP entries, H extension or debug triggers, whose subsections QEMU's default hart sends.
    const subs = (d: Record<string, unknown>) => (d.subsections as Array<Record<string, unknown>>);
    expect(subs(byName(ours, 'cpu')).map((s) => s.vmsd_name)).toEqual(['cpu/envcfg']);
    // The comparator timer was armed between two mtime ticks: its exact expiry travels along.
    expect(subs(byName(ours, 'riscv_mtimer'))).toEqual([{ vmsd_name: 'riscv_mtimer/timers', version: 1,
      fields: [{ name: 'timers', type: 'timer', size: 8 }] }]);
    expect(subs(byName(ours, 'cpu'))[0]).toEqual(subs(byName(realDesc.devices, 'cpu'))
      .find((s) => s.vmsd_name === 'cpu/envcfg'));
  });
});

describe('virt sections: QEMU 7.2\'s own bytes', () => {
  const { m } = demo();
  const real = (name: string) => sectionBody(mig, name, 0, 0x031184);

  it('parses the UART, CLINT timer, PLIC and cpu_common sections of the real stream', () => {
    const serial = loadBody(entry(m, 'serial'), mig.subarray(real('serial')), 3);
    expect(serial.msgs).toEqual([]);
    expect(serial.staged).toMatchObject({ divider: 12, iir: 1, mcr: 8, lsr: 0x60, msr: 0xb0, fcrVmstate: 0 });
    const mt = loadBody(entry(m, 'riscv_mtimer'), mig.subarray(real('riscv_mtimer')), 1);
    expect([mt.ret, mt.staged.timecmp]).toEqual([0, [0n]]);
    const plic = loadBody(entry(m, 'riscv_sifive_plic'), mig.subarray(real('riscv_sifive_plic')), 1);
    expect(plic.ret).toBe(0);
    expect((plic.staged.sourcePriority as number[]).length).toBe(96);
    const common = loadBody(entry(m, 'cpu_common'), mig.subarray(real('cpu_common')), 1);
    expect([common.ret, common.staged.interruptRequest]).toEqual([0, 2]);
  });

  it('refuses QEMU\'s default hart (C, F, D, S, U, H, PMP) with QEMU-style messages', () => {
    const r = loadBody(entry(m, 'cpu'), mig.subarray(real('cpu')), 5);
    expect(r.ret).toBe(-22);
    expect(r.msgs).toEqual(['cpu: the stream\'s hart has PMP entries, which detvm\'s M-mode RV32IMA hart does not']);
  });
});

/** Seeded guest-visible state a device can hold, written through the devices' own state. */
function perturb(m: VirtMachine, rng: PrngState): void {
  const r = (): number => prngNextU32(rng);
  for (const cpu of m.cpus) {
    for (let i = 1; i < 32; i++) if (r() & 1) cpu.x[i] = r() | 0;
    cpu.mscratch = r();
    cpu.mtval = r();
    cpu.mstatus = r() & ((1 << 3) | (1 << 7));
    cpu.mcycleOffsetHi = r();
    cpu.mcycleOffsetLo = r();
    cpu.minstretOffsetLo = r();
    cpu.resvAddr = r() & 1 ? -1 : 0x80001000 + (r() & 0xffc);
    cpu.mideleg = r() & 1 ? 0x1444 : 0;
  }
  const c = m.clint.s;
  c.timecmpHi[0] = r() & 1 ? 0xffffffff : 0;
  c.timeDelta = r() & 1 ? r() % 1000 : 0;
  const p = m.plic.s;
  for (let i = 1; i < 96; i++) p.priority[i] = r() & 7;
  p.enable[0]![0] = r() & ~1;
  p.threshold[1] = r() & 7;
  const s = m.serial!.s;
  s.scr = r() & 0xff;
  if (r() & 1) {
    s.fcr = 0xc1; // FIFOs on, trigger level 14
    s.fcrVmstate = s.fcr;
    s.iir |= 0xc0;
    s.recvFifoItl = 14;
    s.recvFifo = Array.from({ length: 1 + (r() % 16) }, () => r() & 0xff);
    s.lsr |= 1;
    s.timeoutIpending = r() & 1;
    timerModNs(m.serial!.fifoTimeoutTimer, m.clocks.simNs + 1_000_000 + (r() % 1000));
  }
}

describe('virt sections: round trip', () => {
  for (let seed = SEED; seed < SEED + 4; seed++) {
    it(`save → load → save gives the same bytes (smp 2, SEED=${seed})`, () => {
      const a = demo(2);
      runFor(a.m, 150_000_000 + seed * 7_000_000);
      perturb(a.m, prngCreate(seed));
      const s1 = save(a.m);
      const b = demo(2);
      clockAdvanceSimTo(b.m.clocks, a.m.clocks.simNs);
      const failure: MigrationFailure | null = migrationLoadVm(b.m, s1);
      expect(failure, `SEED=${seed}`).toBeNull();
      const s2 = save(b.m);
      expect(Buffer.compare(Buffer.from(s1), Buffer.from(s2)), `SEED=${seed}`).toBe(0);
      expect(machineStateHash(b.m), `SEED=${seed}`).toBe(machineStateHash(a.m));
    });
  }

  it('a machine loaded from a snapshot runs on exactly like the original (smp 2, traced)', () => {
    const a = demo(2, true);
    const b = demo(2, true);
    runFor(a.m, 230_000_000);
    runFor(b.m, 230_000_000);
    const snap = save(a.m);
    expect(migrationLoadVm(b.m, snap)).toBeNull();
    const ta = relativeTrace(a.m, 4000);
    const tb = relativeTrace(b.m, 4000);
    const at = firstDifference(ta, tb);
    expect(at, `first difference: ${ta[at]} vs ${tb[at]}`).toBe(-1);
    expect(machineStateHash(b.m)).toBe(machineStateHash(a.m));
  });

  it('a snapshot loaded into a machine with another history continues the guest exactly (smp 1)', () => {
    const a = demo();
    runFor(a.m, 345_000_000);
    const at = a.serial().length;
    const snap = save(a.m);
    const b = demo();
    runFor(b.m, 120_000_000);
    expect(migrationLoadVm(b.m, snap)).toBeNull();
    const before = b.serial().length;
    const done = (x: typeof a) => () => x.serial().includes('tick 9 hart 0') && x.m.cpus[0]!.halted;
    runUntil(a.m, done(a));
    runUntil(b.m, done(b));
    expect(b.serial().slice(before)).toBe(a.serial().slice(at));
    expect(machineStateHash(b.m)).toBe(machineStateHash(a.m));
  });

  it('a value the hart cannot hold is refused and nothing changes', () => {
    const a = demo();
    runFor(a.m, 120_000_000);
    const snap = save(a.m);
    const misaExt = sectionBody(snap, 'cpu', 0, 0x100) + 548;
    expect(Array.from(snap.subarray(misaExt, misaExt + 4))).toEqual([0, 0, 0x11, 0x01]);
    snap[misaExt + 1] = 0x14;
    const b = demo();
    runFor(b.m, 90_000_000);
    const before = machineStateHash(b.m);
    expect(migrationLoadVm(b.m, snap)).toEqual({
      ret: -22,
      messages: ['1101 != 141101', 'Failed to load cpu:env.misa_ext',
        "error while loading state for instance 0x0 of device 'cpu'", 'Error -22 while loading VM state'],
    });
    expect(machineStateHash(b.m)).toBe(before);
    expect(b.m.runstate.current).toBe('restore-vm');
  });
});
