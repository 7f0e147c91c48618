// The committed guest binaries: busyloop and mixed run to their sifive_test power-off through
// cpuExec (mixed's checksum is recomputed here in TypeScript), demo prints its banner and ticks
// on every hart with virtual time warping through WFI, and a rebuild with the same toolchain
// reproduces the committed bytes (skipped, with a message, when the toolchain is absent).
// A snapshot of demo (written pages + CPU state) continues identically in a second machine.
// Method: guests/bin/*.elf on test/guests/virt-fake.ts.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ramDiscardAll, ramForEachWrittenPage, ramLoadPage } from '../../core/memory/index.ts';
import { cpuLoadState, cpuSaveState } from '../../core/cpu/index.ts';
import { fakeVirtCreate, fakeVirtRun, uartText } from './virt-fake.ts';

const GUESTS = fileURLToPath(new URL('../../guests/', import.meta.url));
const bin = (name: string): Uint8Array => readFileSync(join(GUESTS, 'bin', name));

/** guests/src/mixed.c, in TypeScript with RV32 arithmetic. */
function mixedChecksum(): number {
  const ROUNDS = 640,
    N = 200,
    M = 12;
  const lcg = (s: { v: number }): number => (s.v = (Math.imul(s.v, 1664525) + 1013904223) >>> 0);
  const div = (a: number, b: number): number => (b === -1 ? -a | 0 : (a / b) | 0);
  const rem = (a: number, b: number): number => (b === -1 ? 0 : (a % b) | 0);
  const fib = (n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2));
  const seed = { v: 12345 };
  let check = 0;
  const arr = new Uint32Array(N);
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < N; i++) arr[i] = lcg(seed);
    arr.sort();
    let crc = 0xffffffff;
    for (const byte of new Uint8Array(arr.buffer)) {
      crc ^= byte;
      for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
    }
    check = (Math.imul(check, 33) + (~crc >>> 0)) >>> 0;
    check = (Math.imul(check, 33) + arr[r % N]! + arr[N - 1 - (r % N)]!) >>> 0;
    const s = { v: seed.v };
    const ma: number[] = [],
      mb: number[] = [];
    for (let i = 0; i < M * M; i++) {
      ma.push((lcg(s) >>> 20) - 2048);
      mb.push((lcg(s) >>> 21) - 1024);
    }
    let h = 0;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < M; j++) {
        let acc = 0;
        for (let k = 0; k < M; k++) acc = (acc + Math.imul(ma[i * M + k]!, mb[k * M + j]!)) | 0;
        h = (Math.imul(h, 31) + acc) >>> 0;
      }
    }
    check = (Math.imul(check, 33) + h) >>> 0;
    const d = { v: (seed.v ^ r) >>> 0 };
    let sum = 0;
    for (let i = 0; i < 300; i++) {
      const x = lcg(d) | 0;
      const y = ((lcg(d) >>> 24) - 128) | 1;
      const ux = lcg(d);
      const uy = lcg(d) >>> (i & 31);
      sum = (sum + div(x, y) + rem(x, y)) >>> 0;
      sum = (sum ^ (uy !== 0 ? Math.floor(ux / uy) + (ux % uy) : ux)) >>> 0;
    }
    check = (Math.imul(check, 33) + sum) >>> 0;
    check = (Math.imul(check, 33) + fib(15)) >>> 0;
  }
  return check;
}

describe('guest binaries', () => {
  it('busyloop runs 1e8 iterations and powers off with 0x5555', () => {
    const m = fakeVirtCreate(bin('busyloop.elf'));
    fakeVirtRun(m, () => false, 1e10, 50_000_000);
    expect(m.finisher).toBe(0x5555);
    expect(m.cpus[0]!.icount).toBe(5 + 3 * 100_000_000 + 4);
  });
  it('mixed prints the checksum TypeScript computes and powers off with 0x5555', () => {
    const m = fakeVirtCreate(bin('mixed.elf'));
    fakeVirtRun(m, () => false, 1e10, 1_000_000);
    expect(uartText(m)).toBe(
      `mixed: checksum 0x${mixedChecksum().toString(16).padStart(8, '0')}\r\n`,
    );
    expect(m.finisher).toBe(0x5555);
  });
  it('demo prints a banner, then ticks every 100 ms of virtual time on each of 2 harts', () => {
    const m = fakeVirtCreate(bin('demo.elf'), 2);
    const lines = (): string[] => uartText(m).split('\r\n');
    const now = fakeVirtRun(m, () => lines().length > 7, 10e9, 10_000);
    expect(lines().slice(0, 7)).toEqual([
      'detvm demo guest: riscv32 virt, one tick per hart every 100 ms',
      'tick 1 hart 0',
      'tick 1 hart 1',
      'tick 2 hart 0',
      'tick 2 hart 1',
      'tick 3 hart 0',
      'tick 3 hart 1',
    ]);
    expect(now).toBeGreaterThanOrEqual(300e6);
    expect(now).toBeLessThan(301e6);
    expect(m.finisher).toBeNull();
    // Most of the 300 ms was warped over: the harts executed only a few thousand instructions.
    expect(m.cpus[0]!.icount + m.cpus[1]!.icount).toBeLessThan(20_000);
  });
});

const toolchain = (() => {
  try {
    return execFileSync('riscv64-unknown-elf-gcc', ['--version'], { encoding: 'utf8' }).split(
      '\n',
    )[0]!;
  } catch {
    return null;
  }
})();
const committed = existsSync(join(GUESTS, 'bin/TOOLCHAIN'))
  ? readFileSync(join(GUESTS, 'bin/TOOLCHAIN'), 'utf8').trim()
  : '';
const canRebuild = toolchain !== null && toolchain === committed;
if (!canRebuild) {
  console.log(
    `guests rebuild check skipped: toolchain ${toolchain ?? 'riscv64-unknown-elf-gcc missing'}; ` +
      `binaries were built with ${committed || '?'}`,
  );
}

describe.skipIf(!canRebuild)('guest build', () => {
  it('rebuilds byte-identical binaries', () => {
    const out = mkdtempSync(join(tmpdir(), 'detvm-guests-'));
    try {
      execFileSync('bash', [join(GUESTS, 'build.sh'), out], { stdio: 'pipe' });
      for (const name of ['busyloop.elf', 'demo.elf', 'mixed.elf', 'disk.elf']) {
        expect(Buffer.compare(readFileSync(join(out, name)), bin(name)), name).toBe(0);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('guest snapshot', () => {
  it('demo continues identically after its pages and harts are copied to a new machine', () => {
    const a = fakeVirtCreate(bin('demo.elf'), 2);
    fakeVirtRun(a, () => uartText(a).includes('tick 2 hart 1'), 10e9, 777);
    // Copy: written RAM pages, CPU state (JSON), and the fake devices' state.
    const b = fakeVirtCreate(bin('demo.elf'), 2);
    ramDiscardAll(b.as);
    ramForEachWrittenPage(a.as, (page, bytes) => ramLoadPage(b.as, page, bytes.slice()));
    a.cpus.forEach((cpu, i) =>
      cpuLoadState(b.cpus[i]!, JSON.parse(JSON.stringify(cpuSaveState(cpu)))),
    );
    b.nowNs = a.nowNs;
    b.mtimecmp = [...a.mtimecmp];
    b.uart = [...a.uart];
    const until = (m: typeof a) => (): boolean => uartText(m).includes('tick 5 hart 1');
    fakeVirtRun(a, until(a), 10e9, 777);
    fakeVirtRun(b, until(b), 10e9, 777);
    expect(uartText(b)).toBe(uartText(a));
    expect(b.cpus.map(cpuSaveState)).toEqual(a.cpus.map(cpuSaveState));
    expect(b.nowNs).toBe(a.nowNs);
  });
});
