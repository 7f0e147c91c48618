// A detvm process killed (SIGKILL, a real kill between two system calls) at seeded points while
// it runs savevm on a qcow2 image that already holds snapshots s1 and s2: afterwards
// `qemu-img check` and detvm's own check find no corruption (leaked clusters are allowed, as
// after a crashed QEMU), `qemu-img snapshot -l` and detvm list s1 and s2, and both load: a new
// machine that loads one is in exactly the state a load of it gave before the kill (same state
// hash) and prints what the saving machine printed next. CRASH_POINTS sets the number of kill points
// (default 50), SEED the points. Method: test/support/snapshot-crash-child.ts, disk.elf.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createMachine, type DetvmMachine } from '../../index.ts';
import { qcow2Check, qcow2Create, qcow2Open, qcow2SnapshotList } from '../../core/block/index.ts';
import { hostBlockFileProviderCreate } from '../../core/host/index.ts';
import { prngCreate, prngInt } from '../../core/util/index.ts';
import { GUEST_DISK, stateHash } from './snapshot-support.ts';

const SEED = Number(process.env.SEED ?? 1);
const POINTS = Number(process.env.CRASH_POINTS ?? 50);
const CHILD = join(import.meta.dirname, '..', 'support', 'snapshot-crash-child.ts');
const RUN_NS = 20_000_000;
const AFTER_NS = 60_000_000;

function qemuImg(args: string[]): { status: number; out: string } {
  try {
    return { status: 0, out: execFileSync('qemu-img', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    return { status: err.status ?? -1, out: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

const haveQemuImg = qemuImg(['--version']).status === 0;

function machineOn(image: string, loadvm?: string): DetvmMachine {
  return createMachine({
    kernel: GUEST_DISK, blockFiles: hostBlockFileProviderCreate(), rtcBaseSec: 1_767_225_600,
    drives: [`if=none,file=${image},format=qcow2,id=d0,node-name=disk0`], devices: ['virtio-blk-device,drive=d0'],
    ...(loadvm === undefined ? {} : { loadvm, startPaused: true }),
  });
}

interface Saved {
  hash: string;
  next: string;
}

/**
 * Make s1 and s2 on a new image, and record for each the state a load of it gives (loaded right
 * after saving) and what the guest prints next.
 */
function prepare(image: string): Map<string, Saved> {
  const f = hostBlockFileProviderCreate().create(image);
  qcow2Create(f, { size: 4 << 20 });
  f.close();
  const vm = machineOn(image);
  const saved = new Map<string, Saved>();
  for (const tag of ['s1', 's2']) {
    vm.runFor(RUN_NS);
    vm.hmp('stop');
    expect(vm.hmp(`savevm ${tag}`)).toBe('');
    expect(vm.hmp(`loadvm ${tag}`)).toBe('');
    const hash = stateHash(vm);
    vm.hmp('cont');
    const c = vm.console.text().length;
    vm.runFor(AFTER_NS);
    saved.set(tag, { hash, next: vm.console.text().slice(c) });
  }
  vm.close();
  return saved;
}

function runChild(image: string, killAt: number, runNs: number): Promise<{ code: number | null; signal: string | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', CHILD, image, 's3', String(killAt), String(runNs)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, out }));
  });
}

/** Check the image after the kill: no corruption, s1 and s2 listed and loadable as saved. */
function verify(image: string, dir: string, saved: Map<string, Saved>, label: string): void {
  if (haveQemuImg) {
    const check = qemuImg(['check', '-f', 'qcow2', image]);
    // 0: clean; 3: leaked clusters only (what a crash may leave, as with QEMU).
    expect([0, 3], `${label}: qemu-img check\n${check.out}`).toContain(check.status);
    const listed = qemuImg(['snapshot', '-l', image]).out;
    expect(listed, label).toMatch(/\n1 +s1 /);
    expect(listed, label).toMatch(/\n2 +s2 /);
  }
  const s = qcow2Open(hostBlockFileProviderCreate().open(image, true), { readOnly: true });
  const r = qcow2Check(s);
  expect(r.corruptions, `${label}: ${r.messages.join('\n')}`).toBe(0);
  expect(qcow2SnapshotList(s).map((sn) => sn.name).slice(0, 2), label).toEqual(['s1', 's2']);
  for (const [tag, want] of saved) {
    const copy = join(dir, `load-${tag}.qcow2`);
    copyFileSync(image, copy);
    const vm = machineOn(copy, tag);
    expect(stateHash(vm), `${label}: state after loading ${tag}`).toBe(want.hash);
    vm.hmp('cont');
    vm.runFor(AFTER_NS);
    expect(vm.console.text(), `${label}: output after loading ${tag}`).toBe(want.next);
    vm.close();
  }
}

describe(`savevm killed at ${POINTS} seeded points (seed ${SEED})`, () => {
  it('leaves an image without corruption in which every earlier snapshot is listed and loads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'detvm-crash-'));
    try {
      const base = join(dir, 'base.qcow2');
      const saved = prepare(base);
      // How many writes the child makes before its savevm, and in all.
      const calib = join(dir, 'calib.qcow2');
      copyFileSync(base, calib);
      const c = await runChild(calib, 0, RUN_NS);
      const m = /writes-before=(\d+) writes=(\d+)/.exec(c.out);
      expect(m, c.out).not.toBeNull();
      const before = Number(m![1]);
      const total = Number(m![2]);
      expect(total).toBeGreaterThan(before);
      const rng = prngCreate(SEED);
      const points = Array.from({ length: POINTS }, () => before + 1 + prngInt(rng, total - before));
      const width = 2;
      for (let i = 0; i < points.length; i += width) {
        const batch = points.slice(i, i + width).map((killAt, j) => {
          const image = join(dir, `kill-${i + j}.qcow2`);
          copyFileSync(base, image);
          return runChild(image, killAt, RUN_NS).then((r) => ({ r, image, killAt }));
        });
        for (const { r, image, killAt } of await Promise.all(batch)) {
          const label = `seed ${SEED}, kill before write ${killAt} of ${total}`;
          expect(r.signal, `${label}: ${r.out}`).toBe('SIGKILL');
          verify(image, dir, saved, label);
          rmSync(image);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
