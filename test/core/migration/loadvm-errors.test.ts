// Bad input to the loader (core/migration/loadvm.ts and the section loaders): truncation at
// every prefix, wrong magic and versions, unknown sections, footer mismatches, huge lengths,
// commands, and seeded random bit flips. Every failure must carry QEMU's texts, never crash,
// never allocate by a length the stream claims, and leave the machine exactly as it was
// (atomic load). Method: a seeded fixture stream; SEED from the environment drives fast-check.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  analyzeMigrationStream, loadvmCommit, loadvmCreate, loadvmFeed, qemuFileGetBuffer,
  qemuFileWriterCreate, qemuLoadvmState, qemuSavevmState, qemuSavevmStateBlocked, savevmUnregister,
  vmstateRegister, type LoadvmState, type MigrationFailure,
} from '../../../core/migration/index.ts';
import { machineHash, makeTestMachine, randomizeMachine, type TestMachine } from './fixture.ts';

const SEED = Number(process.env.SEED ?? 20260101);
/** Runs per property (raise with FUZZ_RUNS for a longer search). */
const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

/** The texts QEMU 7.2's loader prints (and detvm's own bounds), as patterns. */
const KNOWN = [
  /^Not a migration stream$/, /^SaveVM v2 format is obsolete and don't work anymore$/,
  /^Unsupported migration stream version$/, /^Configuration section missing$/,
  /^Failed to load \S+:\S+$/,
  /^error while loading state for instance 0x[0-9a-f]+ of device '.*'$/,
  /^error while loading state section id \d+\(.*\)$/,
  /^check_section_footer: Read section footer failed: -\d+$/, /^Missing section footer for .*$/,
  /^Mismatched section id in footer for .* - read 0x[0-9a-f]+ expected 0x[0-9a-f]+$/,
  /^Unable to read ID string for section \d+$/,
  /^qemu_loadvm_section_start_full: Failed to read instance\/version ID: -\d+$/,
  /^qemu_loadvm_section_part_end: Failed to read section ID: -\d+$/,
  /^Unknown savevm section or instance '.*' \d+\. Make sure that your current VM setup matches/,

  /^savevm: unsupported version -?\d+ for '.*' v\d+$/, /^Unknown savevm section -?\d+$/,
  /^Unknown savevm section type \d+$/,
  /^Unknown combination of migration flags: 0x[0-9a-f]+$/, /^Illegal RAM offset [0-9a-f]+$/,
  /^Can't find block .*$/,
  /^Ack, bad migration stream!$/, /^Unknown ramblock ".*", cannot accept migration$/,
  /^Size mismatch: .*: 0x[0-9a-f]+ != 0x[0-9a-f]+: Invalid argument$/,
  /^Received an unexpected compressed page$/,
  /^Failed to decompress XBZRLE page at [0-9a-f]+$/, /^Failed to load XBZRLE page - .*!$/,
  /^.*: incoming version_id \d+ is too new for local version_id \d+$/,
  /^.*: incoming version_id \d+ is too old for local minimum version_id {2}\d+$/,
  /^Machine type received is '.*' and local is 'virt'$/,
  /^Received TARGET_PAGE_BITS is \d+ but local is 12$/,
  /^[0-9a-f]+ != [0-9a-f]+$/, /^Invalid value -?\d+ expecting positive value <= -?\d+$/,
  /^invalid parameter value: .*$/,
  /^\S+: value 0x[0-9a-f]+ is beyond the 53 bits detvm holds in this field$/,
  /^\S+: \S+ (has|is) \d+ (elements|bytes), more than the \d+ this machine (holds|accepts)$/,
  /^MIG_CMD 0x[0-9a-f]+ unknown \(len 0x[0-9a-f]+\)$/,
  /^\S+ received with bad length - expecting \d+, got \d+$/,
  /^CMD_OPEN_RETURN_PATH failed$/, /^CMD_PING \(0x[0-9a-f]+\) received with no return path$/,
  /^CMD_POSTCOPY_\S+ in wrong postcopy state \(\d\)$/,
  /^CMD_POSTCOPY_ADVISE invalid length \(\d+\)$/,
  /^RAM postcopy is disabled but have 16 byte advise$/,
  /^MIG_CMD \S+: detvm does not support postcopy, COLO or a return path$/,
];

function stream(seed: number): Uint8Array {
  const a = makeTestMachine();
  randomizeMachine(a, seed);
  const f = qemuFileWriterCreate();
  expect(qemuSavevmState(a.sv, f)).toBeNull();
  return qemuFileGetBuffer(f).slice();
}

/** Parse `bytes` as a complete stream into `tm` without committing. */
function tryLoad(tm: TestMachine, bytes: Uint8Array): LoadvmState {
  const ls = loadvmCreate(tm.sv);
  loadvmFeed(ls, bytes);
  loadvmFeed(ls, null);
  return ls;
}

function expectKnown(f: MigrationFailure, what: string): void {
  expect(f.ret, what).toBeLessThan(0);
  // Names from a corrupt stream may hold any byte, newlines included: match with dotAll.
  for (const m of f.messages) {
    const known = KNOWN.some((re) => new RegExp(re.source, 's').test(m));
    expect(known, `${what}: unexpected message "${m}"`).toBe(true);
  }
}

function failureOf(tm: TestMachine, bytes: Uint8Array): MigrationFailure {
  const before = machineHash(tm);
  const r = qemuLoadvmState(tm.sv, bytes);
  expect(machineHash(tm)).toBe(before);
  expect(r.ok).toBe(false);
  return r.ok ? { ret: 0, messages: [] } : r.error;
}

function destination(): TestMachine {
  const b = makeTestMachine();
  randomizeMachine(b, 999);
  return b;
}

/** Offsets of the records of a stream, by kind, from the analyzer's walk. */
function offsets(s: Uint8Array, kind: string): number[] {
  return analyzeMigrationStream(s).lines
    .filter((l) => l.includes(` ${kind} `) || l.endsWith(` ${kind}`))
    .map((l) => parseInt(l.trim().slice(3, 9), 16));
}

describe(`loadvm on bad input (SEED=${SEED})`, () => {
  it('fails at every prefix before EOF, changing nothing; loads from EOF on (seed 21)', () => {
    const s = stream(21);
    const eof = offsets(s, 'EOF')[0]!;
    const b = destination();
    const before = machineHash(b);
    for (let len = 0; len < s.length; len++) {
      const ls = tryLoad(b, s.subarray(0, len));
      if (len <= eof) {
        expect(ls.phase, `prefix ${len}`).toBe('failed');
        expectKnown(ls.failure!, `prefix ${len}`);
      } else {
        expect(ls.phase, `prefix ${len}`).toBe('loaded');
        expect(ls.warnings)
          .toEqual(len === eof + 1 ? ['Expected vmdescription section, but got 0'] : []);
      }
    }
    expect(machineHash(b)).toBe(before);
  });

  it('rejects a wrong magic, version 2, other versions, a missing configuration', () => {
    const s = stream(22);
    const b = destination();
    const patch = (at: number, bytes: number[]): Uint8Array => {
      const c = s.slice();
      c.set(bytes, at);
      return c;
    };
    expect(failureOf(b, patch(0, [0x51, 0x45, 0x56, 0x4e])))
      .toEqual({ ret: -22, messages: ['Not a migration stream'] });
    expect(failureOf(b, patch(4, [0, 0, 0, 2])))
      .toEqual({ ret: -95, messages: ["SaveVM v2 format is obsolete and don't work anymore"] });
    expect(failureOf(b, patch(4, [0, 0, 0, 4])))
      .toEqual({ ret: -95, messages: ['Unsupported migration stream version'] });
    expect(failureOf(b, patch(8, [1])))
      .toEqual({ ret: -22, messages: ['Configuration section missing'] });
    expect(failureOf(b, patch(9, [0xff, 0xff, 0xff, 0xff]))).toEqual({
      ret: -22,
      messages: [
        'configuration: name is 4294967295 bytes, more than the 256 this machine accepts',
        'Failed to load configuration:name',
      ],
    });
  });

  it('refuses to load while a non-migratable device is registered', () => {
    const b = destination();
    const usb = {
      name: 'usb-host', versionId: 1, minimumVersionId: 1, unmigratable: true, fields: [],
    };
    vmstateRegister(b.sv, 0, usb, {});
    expect(qemuSavevmStateBlocked(b.sv)).toBe("State blocked by non-migratable device 'usb-host'");
    expect(failureOf(b, stream(22)))
      .toEqual({ ret: -22, messages: ["State blocked by non-migratable device 'usb-host'"] });
  });

  it('rejects a section the destination does not have, naming it', () => {
    const s = stream(23);
    const b = destination();
    savevmUnregister(b.sv, b.sv.handlers.find((se) => se.idstr === 'testdev')!);
    expect(failureOf(b, s)).toEqual({
      ret: -22,
      messages: [
        "Unknown savevm section or instance 'testdev' 0. Make sure that your current VM setup"
        + ' matches your saved VM setup, including any hotplugged devices',
      ],
    });
  });

  it('rejects missing and mismatched footers, unknown record types and section ids', () => {
    const s = stream(24);
    const b = destination();
    const footer = offsets(s, 'SECTION_FOOTER')[0]!;
    const c1 = s.slice();
    c1[footer] = 0x7f;
    expect(failureOf(b, c1)).toEqual({ ret: -22, messages: ['Missing section footer for ram'] });
    const c2 = s.slice();
    c2[footer + 4] = 9;
    expect(failureOf(b, c2))
      .toEqual({
        ret: -22, messages: ['Mismatched section id in footer for ram - read 0x9 expected 0x1'],
      });
    const part = offsets(s, 'SECTION_PART')[0]!;
    const c3 = s.slice();
    c3[part] = 0x42;
    expect(failureOf(b, c3)).toEqual({ ret: -22, messages: ['Unknown savevm section type 66'] });
    const c4 = s.slice();
    c4[part + 4] = 7;
    expect(failureOf(b, c4)).toEqual({ ret: -22, messages: ['Unknown savevm section 7'] });
  });

  it('rejects a section version newer than the local one', () => {
    const s = stream(25);
    // The first FULL section is the timer: type, id, counted "timer", instance, version.
    const full = offsets(s, 'SECTION_FULL')[0]!;
    const c = s.slice();
    c[full + 1 + 4 + 6 + 4 + 3] = 3;
    expect(failureOf(destination(), c))
      .toEqual({ ret: -22, messages: ["savevm: unsupported version 3 for 'timer' v2"] });
  });

  it('atomicity: a stream whose last section is bad applies none of the earlier ones', () => {
    const s = stream(26);
    const gs = offsets(s, 'SECTION_FULL').at(-1)!;
    const c = s.slice();
    c.set(Buffer.from('bogus\0'), gs + 1 + 4 + 12 + 8 + 4);
    const b = destination();
    expect(failureOf(b, c)).toEqual({
      ret: -22,
      messages: [
        'invalid parameter value: bogus',
        "error while loading state for instance 0x0 of device 'globalstate'",
      ],
    });
  });

  it('answers commands as QEMU 7.2 does without a return path or postcopy', () => {
    const s = stream(27);
    const first = offsets(s, 'SECTION_START')[0]!;
    const b = destination();
    const withCmd = (cmd: number[]): Uint8Array => {
      return new Uint8Array([...s.subarray(0, first), 8, ...cmd, ...s.subarray(first)]);
    };
    expect(failureOf(b, withCmd([0, 2, 0, 4, 0, 0, 0, 1])))
      .toEqual({ ret: -1, messages: ['CMD_PING (0x1) received with no return path'] });
    expect(failureOf(b, withCmd([0, 1, 0, 0])))
      .toEqual({ ret: -1, messages: ['CMD_OPEN_RETURN_PATH failed'] });
    expect(failureOf(b, withCmd([0, 0x0b, 0, 0])))
      .toEqual({ ret: -22, messages: ['MIG_CMD 0xb unknown (len 0x0)'] });
    expect(failureOf(b, withCmd([0, 2, 0, 3])))
      .toEqual({ ret: -34, messages: ['PING received with bad length - expecting 4, got 3'] });
    expect(failureOf(b, withCmd([0, 3, 0, 16])))
      .toEqual({ ret: -22, messages: ['RAM postcopy is disabled but have 16 byte advise'] });
    expect(failureOf(b, withCmd([0, 5, 0, 0])))
      .toEqual({ ret: -1, messages: ['CMD_POSTCOPY_RUN in wrong postcopy state (0)'] });
    const advise = qemuLoadvmState(b.sv, withCmd([0, 3, 0, 0]));
    expect(advise.ok).toBe(true); // a zero-length advise without postcopy is accepted
  });

  it('skips a vmdesc of any claimed length without keeping it', () => {
    const s = stream(28);
    const vd = offsets(s, 'VMDESCRIPTION')[0]!;
    const c = s.slice(0, vd + 5);
    c.set([0xff, 0xff, 0xff, 0xff], vd + 1);
    const b = makeTestMachine();
    const ls = loadvmCreate(b.sv);
    loadvmFeed(ls, c);
    const chunk = new Uint8Array(1 << 20);
    for (let i = 0; i < 64; i++) expect(loadvmFeed(ls, chunk.slice())).toBe('vmdesc-skip');
    expect(ls.f.chunks.length).toBeLessThanOrEqual(1);
    expect(loadvmFeed(ls, null)).toBe('loaded');
  });

  it(`never crashes on random bit flips, failures change nothing (SEED=${SEED})`, () => {
    const s = stream(29);
    const b = destination();
    const before = machineHash(b);
    const flips = fc.array(fc.nat({ max: s.length * 8 - 1 }), { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(flips, (bits) => {
        const c = s.slice();
        for (const bit of bits) c[bit >> 3] = c[bit >> 3]! ^ (1 << (bit & 7));
        const ls = tryLoad(b, c);
        expect(['loaded', 'failed']).toContain(ls.phase);
        if (ls.phase === 'failed') expectKnown(ls.failure!, `flips ${bits.join(',')}`);
        expect(machineHash(b)).toBe(before);
        // What loads must also apply without tripping an assertion.
        if (ls.phase === 'loaded') loadvmCommit(tryLoad(makeTestMachine(), c));
        const walk = analyzeMigrationStream(c);
        expect(walk.error === null || walk.lines.at(-1)!.includes('ERROR')).toBe(true);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it(`never crashes on random bytes spliced into a stream (SEED=${SEED})`, () => {
    const s = stream(30);
    const b = destination();
    const before = machineHash(b);
    const junk = fc.uint8Array({ minLength: 1, maxLength: 64 });
    fc.assert(
      fc.property(fc.nat({ max: s.length }), junk, (at, bytes) => {
        const c = new Uint8Array([...s.subarray(0, at), ...bytes, ...s.subarray(at)]);
        const ls = tryLoad(b, c);
        if (ls.phase === 'failed') expectKnown(ls.failure!, `junk at ${at}`);
        expect(machineHash(b)).toBe(before);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  });
});
