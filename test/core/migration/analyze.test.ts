// The stream walker (core/migration/analyze.ts) and its command (bin/detvm-analyze.ts): on the
// real QEMU 7.2 stream it reports the very lines of the reference walk in shared/streams, finds
// the same RAM pages, and loading that stream into detvm fails cleanly on QEMU's first RAM block
// detvm lacks; on corrupt input it ends with an ERROR line instead of throwing. Method: line-by-
// line comparison with the dump file; seeded bit flips; the command on a temporary directory.
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { analyzeMain } from '../../../bin/detvm-analyze.ts';
import { analyzeMigrationStream, qemuLoadvmState } from '../../../core/migration/index.ts';
import { prngCreate, prngInt } from '../../../core/util/index.ts';
import { machineHash, makeTestMachine, randomizeMachine } from './fixture.ts';

const DIR = join(import.meta.dirname, '../../fixtures/qemu-7.2/streams');
const STREAM = join(DIR, 'qemu-7.2-riscv32-virt-16M.mig');
const mig = new Uint8Array(readFileSync(STREAM));
const dump = readFileSync(join(DIR, 'qemu-7.2-riscv32-virt-16M.dump.txt'), 'utf8')
  .replace(/\n$/, '').split('\n');


describe('walking the real QEMU 7.2 stream', () => {
  it('reports the same records as its dump file, line for line', () => {
    const r = analyzeMigrationStream(mig);
    expect(r.error).toBeNull();
    expect(r.lines.length).toBe(dump.length);
    r.lines.forEach((line, i) => expect(line, `line ${i + 1}`).toBe(dump[i]));
  });

  it('extracts the RAM pages it holds: the MROM reset vector and three guest pages', () => {
    const r = analyzeMigrationStream(mig, { extractRam: true });
    const byName = new Map(r.ramBlocks.map((b) => [b.idstr, b]));
    const mrom = byName.get('riscv_virt_board.mrom')!;
    expect(mrom.length).toBe(0xf000);
    const page0 = mrom.pages!.get(0) as Uint8Array;
    // auipc t0, 0 (little-endian 0x00000297): QEMU's reset vector at 0x1000.
    expect(Array.from(page0.subarray(0, 4))).toEqual([0x97, 0x02, 0x00, 0x00]);
    const ram = byName.get('riscv_virt_board.ram')!;
    const normal = [...ram.pages!].filter(([, v]) => typeof v !== 'number').map(([o]) => o);
    expect(normal.length).toBe(3);
    expect(ram.pages!.size).toBe(4096);
    expect(byName.get('virt.flash0')!.pages!.size).toBe(8192);
  });

  it('prints the vmdesc JSON as the stream carries it', () => {
    const r = analyzeMigrationStream(mig);
    expect(r.vmdescJson!.length).toBe(9945);
    const head = '{"page_size": 4096, "devices": [{"name": "timer", "instance_id": 0';
    expect(r.vmdescJson!.startsWith(head)).toBe(true);
  });

  it('does not load into detvm (no flash blocks): QEMU\'s message, nothing changed', () => {
    const b = makeTestMachine();
    randomizeMachine(b, 1);
    const before = machineHash(b);
    const r = qemuLoadvmState(b.sv, mig);
    expect(r.ok ? null : r.error).toEqual({
      ret: -22,
      messages: [
        'Unknown ramblock "virt.flash0", cannot accept migration',
        "error while loading state for instance 0x0 of device 'ram'",
      ],

    });
    expect(machineHash(b)).toBe(before);
  });

  it('ends corrupt copies with an ERROR line, never an exception (seed 7, 300 flips)', () => {
    const rng = prngCreate(7);
    for (let i = 0; i < 300; i++) {
      const c = mig.slice(0, prngInt(rng, 3) === 0 ? prngInt(rng, mig.length) : mig.length);
      for (let k = 0; k < 3; k++) {
        const at = prngInt(rng, c.length);
        c[at] = c[at]! ^ (1 << prngInt(rng, 8));
      }
      const r = analyzeMigrationStream(c);
      if (r.error !== null) expect(r.lines.at(-1)!.slice(12, 17), `run ${i}`).toBe('ERROR');
    }
  });
});

describe('detvm-analyze', () => {
  function run(argv: string[]): { code: number; out: string; err: string } {
    let out = '';
    let err = '';
    const code = analyzeMain(argv, { out: (s) => (out += s), err: (s) => (err += s) });
    return { code, out, err };
  }

  it('lists the records, prints the vmdesc, and extracts RAM blocks as files', () => {
    expect(run([STREAM]).out).toBe(`${dump.join('\n')}\n`);
    expect(run([STREAM, '--vmdesc']).out.length).toBe(9946);
    const dir = mkdtempSync(join(tmpdir(), 'detvm-analyze-'));
    try {
      const r = run([STREAM, '--extract-ram', dir]);
      expect(r.code).toBe(0);
      expect(r.out.split('\n').filter(Boolean).length).toBe(dump.length + 4);
      expect(statSync(join(dir, 'virt.flash0')).size).toBe(0x2000000);
      const mrom = readFileSync(join(dir, 'riscv_virt_board.mrom'));
      expect(mrom.length).toBe(0xf000);
      expect(mrom.readUInt32LE(0)).toBe(0x00000297);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 on bad usage and 1 on a file that is not a stream', () => {
    expect(run([]).code).toBe(2);
    expect(run([STREAM, '--bogus']).code).toBe(2);
    const r = run([join(DIR, 'README.md')]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/ERROR {11}not a migration stream \(bad magic\)\n$/);
  });
});
