// Whole streams (core/migration savevm.ts, loadvm.ts, ram.ts): a detvm machine saved with
// qemuSavevmState has QEMU 7.2's layout byte for byte (header, configuration, START/PART/END with
// footers, RAM page encoding, FULL sections, EOF, vmdesc), loads into a fresh machine, and saves
// again to identical bytes. Method: seeded fixture machines, exact byte and text expectations.
import { describe, expect, it } from 'vitest';
import {
  analyzeMigrationStream, qemuFileGetBuffer, qemuFileWriterCreate, qemuLoadvmState, qemuSavevmState,
  globalStateReceived, globalStateGetRunstate, locateVmdesc, savevmStateCreate, vmstateRegister,
  type AnalyzeResult,
} from '../../../core/migration/index.ts';
import { machineHash, makeTestMachine, randomizeMachine, type TestMachine } from './fixture.ts';

function save(tm: TestMachine): Uint8Array {
  const f = qemuFileWriterCreate();
  expect(qemuSavevmState(tm.sv, f)).toBeNull();
  return qemuFileGetBuffer(f).slice();
}

const RAM_START = 'ram={"mem_size_records": 1, "eos": 1}';

function be32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

describe('a detvm stream', () => {
  it('round-trips: save, load into a fresh machine, save again: same bytes (seeds 1-20)', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const a = makeTestMachine();
      randomizeMachine(a, seed);
      const s1 = save(a);
      const b = makeTestMachine();
      const r = qemuLoadvmState(b.sv, s1);
      expect(r, `seed ${seed}`).toEqual({ ok: true, warnings: [] });
      b.dev.derivedCache = a.dev.derivedCache; // not described, so not migrated
      expect(machineHash(b, false), `seed ${seed}`).toBe(machineHash(a, false));
      const s2 = save(b);
      expect(Buffer.from(s2).equals(Buffer.from(s1)), `seed ${seed}: second save differs`)
        .toBe(true);
    }
  });

  it('restores exactly what was described and leaves undescribed state alone', () => {
    const a = makeTestMachine();
    randomizeMachine(a, 7);
    const b = makeTestMachine();
    b.dev.derivedCache = 12345;
    expect(qemuLoadvmState(b.sv, save(a)).ok).toBe(true);
    expect(b.dev.derivedCache).toBe(12345);
    b.dev.derivedCache = a.dev.derivedCache;
    expect(machineHash(b, false)).toBe(machineHash(a, false));
    expect(b.clocks.cpuClockOffsetNs).toBe(a.clocks.cpuClockOffsetNs);
    expect(b.dev.u64big).toBe(a.dev.u64big);
    expect(globalStateReceived(b.gs)).toBe(true);
    expect(globalStateGetRunstate(b.gs)).toBe('running');
  });

  it('has QEMU 7.2\'s layout: header, configuration, RAM, FULL sections, EOF, vmdesc', () => {
    const a = makeTestMachine();
    randomizeMachine(a, 3);
    const s = save(a);
    // QEVM, version 3, 0x07, len 4, "virt", then START of section 1 ("ram" registered second).
    expect(Array.from(s.subarray(0, 17)))
      .toEqual([0x51, 0x45, 0x56, 0x4d, 0, 0, 0, 3, 7, 0, 0, 0, 4, 0x76, 0x69, 0x72, 0x74]);
    expect(s[17]).toBe(1);
    expect(be32(s, 18)).toBe(1);
    const r = analyzeMigrationStream(s);
    expect(r.error).toBeNull();
    const kinds = r.lines.slice(1).map((l) => l.trim().replace(/^@0x[0-9a-f]+ /, '').split(' ')[0]);
    expect(kinds).toEqual([
      'CONFIGURATION', 'SECTION_START', 'MEM_SIZE', 'SECTION_FOOTER',
      'SECTION_PART', 'SECTION_FOOTER', 'SECTION_END', 'SECTION_FOOTER',
      'SECTION_FULL', 'SECTION_FOOTER', 'SECTION_FULL', 'SECTION_FOOTER', 'SECTION_FULL', 'SECTION_FOOTER',
      'EOF', 'VMDESCRIPTION', 'devices:', 'trailing', 'RAM',
    ]);
    expect(r.lines[2])
      .toBe(`  @0x000011 SECTION_START   id=1 name='ram' instance=0 version=4 ${RAM_START}`);
    // ROM (8 KiB) sorts after the 64 KiB RAM; one named record per block, the rest CONTINUE.
    expect(r.lines[3]).toBe(
      '      MEM_SIZE total=0x12000: riscv_virt_board.ram=0x10000, riscv_virt_board.mrom=0x2000');
    expect(r.lines[5]).toContain('ram={"zero_pages": 14, "normal_pages": 4, "eos": 1,'
      + ' "continue_records": 16, "named_records": 2}');
    expect(r.lines[7]).toContain(`SECTION_END     id=1 name='ram' ram={"eos": 1}`);
    expect(r.lines.at(-3)).toBe('      devices: timer/0 v2, testdev/0 v3, globalstate/0 v1');
    expect(r.lines.at(-1)).toBe('  RAM pages per block: riscv_virt_board.ram: zero=13 normal=3,'
      + ' riscv_virt_board.mrom: zero=1 normal=1');
    expect(r.lines.at(-2)).toBe('  trailing bytes after last record: 0');
  });

  it('describes each FULL section in the vmdesc exactly as QEMU would', () => {
    const a = makeTestMachine();
    randomizeMachine(a, 5);
    a.dev.extra = 2;
    a.dev.list = [1, 2, 3];
    a.dev.listLen = 3;
    const json = analyzeMigrationStream(save(a)).vmdescJson!;
    expect(json.startsWith('{"page_size": 4096, "devices": [{"name": "timer", "instance_id": 0, '
      + '"vmsd_name": "timer", "version": 2, "fields": [{"name": "cpu_ticks_offset", "type": '
      + '"int64", "size": 8}, {"name": "unused", "type": "unused_buffer", "size": 8}, {"name":'
      + ' "cpu_clock_offset", "type": "int64", "size": 8}], "subsections": [{"vmsd_name":'
      + ' "timer/icount",'
      + ' "version": 1, "fields": [{"name": "qemu_icount_bias", "type": "int64", "size": 8}, '
      + '{"name": "qemu_icount", "type": "int64", "size": 8}]}]}, '))
      .toBe(true);
    const dev = (JSON.parse(json) as { devices: Array<Record<string, unknown>> }).devices[1]!;
    expect(dev.name).toBe('testdev');
    const fields = dev.fields as Array<Record<string, unknown>>;
    const byName = (n: string): Record<string, unknown> => fields.find((f) => f.name === n)!;
    expect(byName('regs')).toEqual({ name: 'regs', array_len: 4, type: 'uint32', size: 4 });
    expect(byName('list')).toEqual({ name: 'list', array_len: 3, type: 'uint16', size: 2 });
    expect(byName('name')).toEqual({ name: 'name', type: 'buffer', size: a.dev.nameLen });
    expect(byName('unused[0]')).toEqual({ name: 'unused[0]', type: 'unused_buffer', size: 3 });
    expect(byName('unused[1]')).toEqual({ name: 'unused[1]', type: 'unused_buffer', size: 2 });
    expect(byName('elems')).toEqual({
      name: 'elems', array_len: 2, type: 'struct',
      struct: {
        vmsd_name: 'testdev/elem', version: 1,
        fields: [{ name: 'a', type: 'uint32', size: 4 }, { name: 'b', type: 'bool', size: 1 }],
      },
      size: 5,
    });
    expect(byName('flat')).toEqual({
      name: 'flat', type: 'struct',
      struct: {
        vmsd_name: 'testdev/flat', version: 2,
        fields: [{ name: 'u8', type: 'uint8', size: 1 }, { name: 'i8', type: 'int8', size: 1 }],
      },
      size: 2,
    });
    expect(byName('magic')).toEqual({ name: 'magic', type: 'uint32 equal', size: 4 });
    expect(dev.subsections).toEqual([{
      vmsd_name: 'testdev/extra', version: 1, fields: [{ name: 'extra', type: 'uint32', size: 4 }],
      subsections: [{
        vmsd_name: 'testdev/extra/deep', version: 1,
        fields: [{ name: 'extra_timer', type: 'timer', size: 8 }],
      }],
    }]);
  });

  it('omits a section whose needed() is false, and the loader keeps the local state', () => {
    const a = makeTestMachine();
    randomizeMachine(a, 9);
    a.gs.optional = true; // store-global-state=off and "running": not needed
    const s = save(a);
    expect(analyzeMigrationStream(s).lines.join('\n')).not.toContain('globalstate');
    const b = makeTestMachine();
    expect(qemuLoadvmState(b.sv, s).ok).toBe(true);
    expect(globalStateReceived(b.gs)).toBe(false);
  });

  it('rejects a stream for another RAM size (QEMU\'s resize message), changing nothing', () => {
    const a = makeTestMachine();
    randomizeMachine(a, 11);
    const b = makeTestMachine(128 * 1024);
    randomizeMachine(b, 12);
    const before = machineHash(b);
    const r = qemuLoadvmState(b.sv, save(a));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error).toEqual({
      ret: -22,
      messages: [
        'Size mismatch: riscv_virt_board.ram: 0x10000 != 0x20000: Invalid argument',
        "error while loading state for instance 0x0 of device 'ram'",
      ],
    });
    expect(machineHash(b)).toBe(before);
  });

  it('rejects another machine type', () => {
    const a = makeTestMachine();
    a.sv.machineName = 'sifive_u';
    const b = makeTestMachine();
    const r = qemuLoadvmState(b.sv, save(a));
    expect(r.ok ? null : r.error)
      .toEqual({ ret: -22, messages: ["Machine type received is 'sifive_u' and local is 'virt'"] });
  });

  it('pads the vmdesc when a 0x7b length byte would hide it from analyze-migration.py', () => {
    // The script takes the first '{' after the last NUL: a length of 0x7b would be that brace.
    const json = (k: number): Uint8Array => {
      const sv = savevmStateCreate('virt');
      const vmsd = { name: 'x'.repeat(k), versionId: 1, minimumVersionId: 1, fields: [] };
      vmstateRegister(sv, 0, vmsd, {});
      const f = qemuFileWriterCreate();
      expect(qemuSavevmState(sv, f)).toBeNull();
      return qemuFileGetBuffer(f).slice();
    };
    const len1 = analyzeMigrationStream(json(1)).vmdescJson!.length;
    const k = 1 + (0x7b - len1) / 2; // the name appears twice ("name" and "vmsd_name")
    expect(Number.isInteger(k)).toBe(true);
    const located = locateVmdesc(json(k));
    expect(located?.length).toBe(0x7c);
    expect(located!.endsWith('} ')).toBe(true);
    expect((JSON.parse(located!) as { devices: Array<{ name: string }> }).devices[0]!.name)
      .toBe('x'.repeat(k));
  });

  it('walks its own stream with the analyzer and extracts the RAM it holds', () => {
    const a = makeTestMachine();
    randomizeMachine(a, 13);
    const r: AnalyzeResult = analyzeMigrationStream(save(a), { extractRam: true });
    const ram = r.ramBlocks.find((b) => b.idstr === 'riscv_virt_board.ram')!;
    expect(ram.length).toBe(a.as.ramSize);
    for (const [off, v] of ram.pages!) {
      const want = new Uint8Array(4096);
      want.set(a.as.ram8[off >>> 16]!.subarray(off & 0xffff, (off & 0xffff) + 4096));
      expect(typeof v === 'number' ? new Uint8Array(4096).fill(v) : v, `page 0x${off.toString(16)}`)
        .toEqual(want);
    }
    expect(r.ramBlocks.find((b) => b.idstr === 'riscv_virt_board.mrom')!.pages!.get(0))
      .toEqual(a.rom.subarray(0, 4096));
  });
});
