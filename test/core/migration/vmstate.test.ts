// The VMState interpreter (core/migration/vmstate.ts) and the descriptions shipped with it:
// the "timer" and "globalstate" sections read from and written back to the exact bytes and
// vmdesc entries of the real QEMU 7.2 stream; version gating, subsections, *_equal/int32_le
// checks, bounds and hooks with QEMU's messages; staging never touches the live object and
// commit writes typed arrays in place. Method: byte-exact expectations on small descriptions.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loopMachineCreate } from '../../../core/loop/index.ts';
import {
  cpuTimersCommit, globalStateCreate, jsonWriterEndObject, jsonWriterGet, jsonWriterInt64,
  jsonWriterNew, jsonWriterStartObject, jsonWriterStr, qemuFileGetBuffer, qemuFileReaderCreate,
  qemuFileWriterCreate, qemuPutBe32, qemuPutBe64, qemuPutByte, qemuPutCountedString, vmstateArray,
  vmstateCommit, vmstateGlobalState, vmstateLoadState, vmstateSaveState, vmstateTimers,
  vmstateUint32, type VMStateDescription, type VMStateStaged,
} from '../../../core/migration/index.ts';
import { testDevCreate, testDevRandomize, vmstateTestDev } from './fixture.ts';
import { prngCreate } from '../../../core/util/index.ts';

const STREAMS = join(import.meta.dirname, '../../fixtures/qemu-7.2/streams');
const STREAM = join(STREAMS, 'qemu-7.2-riscv32-virt-16M.mig');
const mig = new Uint8Array(readFileSync(STREAM));
const realVmdesc = new TextDecoder().decode(mig.subarray(0x031f01 + 5));

/** Save `opaque` as a FULL section's body would be, with its vmdesc device entry. */
function saveWithDesc(
  vmsd: VMStateDescription, opaque: object, name: string,
): { bytes: number[]; json: string } {
  const f = qemuFileWriterCreate();
  const w = jsonWriterNew();
  jsonWriterStartObject(w, null);
  jsonWriterStr(w, 'name', name);
  jsonWriterInt64(w, 'instance_id', 0);
  expect(vmstateSaveState(f, vmsd, opaque, w)).toBe(0);
  jsonWriterEndObject(w);
  return { bytes: Array.from(qemuFileGetBuffer(f)), json: jsonWriterGet(w) };
}

interface Loaded {
  ret: number;
  staged: VMStateStaged;
  msgs: string[];
  /** Bytes left unread. */
  left: number;
}

function load(
  vmsd: VMStateDescription, bytes: Uint8Array | number[], live: object, version = vmsd.versionId,
): Loaded {
  const f = qemuFileReaderCreate(Uint8Array.from(bytes));
  const staged: VMStateStaged = {};
  const msgs: string[] = [];
  const ret = vmstateLoadState(f, vmsd, staged, live, version, (m) => msgs.push(m));
  return { ret, staged, msgs, left: f.end - f.pos };
}

describe('timer section (vmstate_timers) against QEMU 7.2', () => {
  const body = mig.subarray(0x031197, 0x031197 + 24);

  it('loads the real section into ClocksState; saves the same bytes and vmdesc entry', () => {
    const clocks = loopMachineCreate().clocks;
    const r = load(vmstateTimers, body, clocks);
    expect(r)
      .toEqual({
        ret: 0, staged: { cpuTicksOffset: 0x3ee06503, cpuClockOffsetNs: 0x1dff876d }, msgs: [],
        left: 0,
      });
    expect(clocks.cpuClockOffsetNs).toBe(0); // staging does not touch the live state
    cpuTimersCommit(clocks, r.staged);
    const out = saveWithDesc(vmstateTimers, clocks, 'timer');
    expect(out.bytes).toEqual(Array.from(body));
    expect(realVmdesc).toContain(out.json);
  });

  it('adds the timer/icount subsection when icount is on', () => {
    const clocks = loopMachineCreate({ clock: { icountShift: 0 } }).clocks;
    clocks.icount = 1000;
    clocks.icountBiasNs = -5;
    const out = saveWithDesc(vmstateTimers, clocks, 'timer');
    expect(out.bytes.slice(24)).toEqual([5, 12, ...Buffer.from('timer/icount'), 0, 0, 0, 1,
      0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfb, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]);
    expect(out.json)
      .toContain('"subsections": [{"vmsd_name": "timer/icount", "version": 1, "fields": [{"name":'
        + ' "qemu_icount_bias", "type": "int64", "size": 8}, {"name": "qemu_icount", "type": '
        + '"int64", "size": 8}]}]');
    expect(load(vmstateTimers, out.bytes, loopMachineCreate().clocks).staged).toEqual({
      cpuTicksOffset: 0, cpuClockOffsetNs: 0, icountBiasNs: -5, icount: 1000,
    });
  });

  it('gates cpu_clock_offset on version 2; rejects versions outside [1, 2]', () => {
    const clocks = loopMachineCreate().clocks;
    expect(load(vmstateTimers, body.subarray(0, 16), clocks, 1))
      .toEqual({ ret: 0, staged: { cpuTicksOffset: 0x3ee06503 }, msgs: [], left: 0 });
    expect(load(vmstateTimers, body, clocks, 3).msgs)
      .toEqual(['timer: incoming version_id 3 is too new for local version_id 2']);
    expect(load(vmstateTimers, body, clocks, 0)).toMatchObject({
      ret: -22, msgs: ['timer: incoming version_id 0 is too old for local minimum version_id  1'],
    });
  });

  it('reads QEMU\'s warp-timer subsection and drops it on commit', () => {
    const f = qemuFileWriterCreate();
    qemuPutBe64(f, 1);
    qemuPutBe64(f, 0);
    qemuPutBe64(f, 2);
    qemuPutByte(f, 5);
    qemuPutCountedString(f, 'timer/icount');
    qemuPutBe32(f, 1);
    qemuPutBe64(f, 3);
    qemuPutBe64(f, 4);
    qemuPutByte(f, 5);
    qemuPutCountedString(f, 'timer/icount/warp_timer');
    qemuPutBe32(f, 1);
    qemuPutBe64(f, 99);
    qemuPutBe64(f, -1);
    const clocks = loopMachineCreate().clocks;
    const r = load(vmstateTimers, qemuFileGetBuffer(f), clocks);
    expect(r.ret).toBe(0);
    expect(r.staged).toMatchObject({ vmClockWarpStart: 99, icountWarpTimer: -1, icount: 4 });
    cpuTimersCommit(clocks, r.staged);
    expect(clocks.icount).toBe(4);
    expect('vmClockWarpStart' in clocks).toBe(false);
  });
});

describe('globalstate section against QEMU 7.2', () => {
  const body = mig.subarray(0x031e93, 0x031e93 + 104);

  it('loads "paused" from the real stream and saves the same bytes and vmdesc entry', () => {
    const gs = globalStateCreate();
    const r = load(vmstateGlobalState, body, gs);
    expect(r.ret).toBe(0);
    expect(r.staged.state).toBe('paused');
    expect(r.staged.received).toBe(true);
    vmstateCommit(gs, r.staged);
    const out = saveWithDesc(vmstateGlobalState, gs, 'globalstate');
    expect(out.bytes).toEqual(Array.from(body));
    expect(realVmdesc).toContain(out.json);
  });

  it('rejects a run state name QEMU does not know', () => {
    const bytes = Array.from(body);
    bytes.splice(4, 6, ...Buffer.from('bogus\0'));
    expect(load(vmstateGlobalState, bytes, globalStateCreate()))
      .toMatchObject({ ret: -22, msgs: ['invalid parameter value: bogus'] });
  });
});

describe('VMState interpreter', () => {
  function saved(seed: number): { bytes: number[]; dev: ReturnType<typeof testDevCreate> } {
    const dev = testDevCreate();
    testDevRandomize(dev, prngCreate(seed));
    return { bytes: saveWithDesc(vmstateTestDev, dev, 'testdev').bytes, dev };
  }

  it('round-trips every field kind; commit writes typed arrays in place (seeds 1-30)', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const { bytes, dev } = saved(seed);
      const dst = testDevCreate();
      const regs = dst.regs;
      const r = load(vmstateTestDev, bytes, dst);
      expect(r.ret, `seed ${seed}: ${r.msgs.join('; ')}`).toBe(0);
      expect(r.left).toBe(0);
      vmstateCommit(dst, r.staged);
      expect(dst.regs).toBe(regs);
      expect(saveWithDesc(vmstateTestDev, dst, 'testdev').bytes, `seed ${seed}`).toEqual(bytes);
      expect(dst.u64big).toBe(dev.u64big);
      expect(dst.i64).toBe(dev.i64);
      expect(Array.from(dst.signedRegs)).toEqual(Array.from(dev.signedRegs));
    }
  });

  it('checks *_equal and int32_le fields against the local value, with QEMU\'s messages', () => {
    const { bytes } = saved(1);
    const other = testDevCreate();
    other.magic = 0x1234;
    expect(load(vmstateTestDev, bytes, other).msgs)
      .toEqual(['1234 != 5eed', 'Failed to load testdev:magic']);
    const small = testDevCreate();
    small.limit = 50;
    expect(load(vmstateTestDev, bytes, small).msgs)
      .toEqual([
        'Invalid value 100 expecting positive value <= 50', 'Failed to load testdev:limit',
      ]);
  });

  it('bounds what a stream can make it allocate: VBUFFER sizes and VARRAY counts', () => {
    const s = saved(2);
    const at = 1 + 2 + 4 + 8 + 8 + 2 + 4 + 8 + 16 + 12;
    const bigList = [...s.bytes];
    bigList.splice(at, 4, 0, 0, 0, 9);
    expect(load(vmstateTestDev, bigList, testDevCreate()).msgs).toEqual([
      'testdev: list has 9 elements, more than the 8 this machine holds',
      'Failed to load testdev:list',
    ]);
    const nameAt = at + 4 + 2 * s.dev.listLen + 6;
    const bigName = [...s.bytes];
    bigName.splice(nameAt, 4, 0xff, 0xff, 0xff, 0xff);
    expect(load(vmstateTestDev, bigName, testDevCreate()).msgs).toEqual([
      'testdev: name is 4294967295 bytes, more than the 32 this machine accepts',
      'Failed to load testdev:name',
    ]);
  });

  it('refuses a 64-bit value a number property cannot hold exactly', () => {
    const s = saved(3);
    const bytes = [...s.bytes];
    bytes.splice(7, 8, 0x40, 0, 0, 0, 0, 0, 0, 0);
    expect(load(vmstateTestDev, bytes, testDevCreate()).msgs).toEqual([
      'testdev.u64: value 0x4000000000000000 is beyond the 53 bits detvm holds in this field',
      'Failed to load testdev:u64',
    ]);
  });

  it('loads version 2 without the version-3 field, and a truncated section fails with -EIO', () => {
    const dev = testDevCreate();
    testDevRandomize(dev, prngCreate(4));
    dev.extra = 0; // no subsection: "late" is the last 4 bytes
    const full = saveWithDesc(vmstateTestDev, dev, 'testdev').bytes;
    const r = load(vmstateTestDev, full.slice(0, -4), testDevCreate(), 2);
    expect(r).toMatchObject({ ret: 0, left: 0 });
    expect('late' in r.staged).toBe(false);
    const cut = load(vmstateTestDev, full.slice(0, 20), testDevCreate());
    expect(cut.ret).toBe(-5);
    expect(cut.msgs.at(-1)).toMatch(/^Failed to load testdev:/);
  });

  it('subsections: an unknown one is -ENOENT; other bytes end the section', () => {
    const dev = testDevCreate();
    const base = saveWithDesc(vmstateTestDev, dev, 'testdev').bytes;
    const unknown = [...base, 5, 11, ...Buffer.from('testdev/zzz'), 0, 0, 0, 1];
    expect(load(vmstateTestDev, unknown, testDevCreate())).toMatchObject({ ret: -2, msgs: [] });
    const foreign = [...base, 5, 9, ...Buffer.from('other/zzz'), 0, 0, 0, 1];
    expect(load(vmstateTestDev, foreign, testDevCreate())).toMatchObject({ ret: 0, left: 15 });
  });

  it('describes a field_exists array element by element ("index"), as QEMU does', () => {
    const vmsd: VMStateDescription = {
      name: 'idx', versionId: 1, minimumVersionId: 1,
      fields: [
        vmstateArray('uint8', 'v', 'v', 2, { fieldExists: () => true }),
        vmstateUint32('one', 'one'),
      ],
    };
    expect(saveWithDesc(vmsd, { v: [1, 2], one: 3 }, 'idx').json).toBe(
      '{"name": "idx", "instance_id": 0, "vmsd_name": "idx", "version": 1, "fields": [{"name": "v",'
        + ' "index": 0, "type": "uint8", "size": 1}, {"name": "v", "index": 1, "type": "uint8",'
        + ' "size": 1}, {"name": "one", "type": "uint32", "size": 4}]}',
    );
  });

  it('reports a failing pre_save as QEMU does', () => {
    const vmsd: VMStateDescription = {
      name: 'bad', versionId: 1, minimumVersionId: 1, preSave: () => -22, fields: [],
    };
    const errs: string[] = [];
    expect(vmstateSaveState(qemuFileWriterCreate(), vmsd, {}, null, errs)).toBe(-22);
    expect(errs).toEqual(['pre-save failed: bad']);
  });
});
