// Compatibility with real QEMU 7.2 tools (qemu-img, qemu-io from qemu-utils). Skipped, with a
// message, when they are not installed. Method: images on the host file system through detvm's
// host file adapter; detvm writes and QEMU checks and reads, QEMU writes and detvm reads:
//   - `qemu-img create` and detvm's create are byte-identical for several options;
//   - `qemu-img check` finds no errors in detvm's images and prints what detvm's report prints;
//   - `qemu-img snapshot -l` lists detvm's snapshots exactly as detvm formats them;
//   - disk contents detvm wrote (active and in snapshots) read back through QEMU;
//   - images and snapshots made by qemu-img/qemu-io (including compressed clusters) read in detvm;
//   - the qcow2 open errors are the texts qemu-img prints for the same crafted images.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type BlockFileProvider, type Qcow2State, qcow2Check, qcow2CheckReportText, qcow2Close, qcow2Create, qcow2Open,
  qcow2Pread, qcow2Pwrite, qcow2SaveVmstate, qcow2SnapshotCreate, qcow2SnapshotDelete, qcow2SnapshotGoto,
  qcow2SnapshotList, qcow2ZeroClusters, qemuImgSnapshotListText, qcow2LoadVmstate,
} from '../../../core/block/index.ts';
import { hostBlockFileProviderCreate } from '../../../core/host/block-file.ts';
import { prngInt } from '../../../core/util/index.ts';
import { SEED, firstDiff, randomBytes, randomRange, rngFor } from './support.ts';
import { OPEN_ERROR_CASES, craftedImage } from './crafted.ts';

const HAVE = spawnSync('qemu-img', ['--version'], { encoding: 'utf8' }).status === 0
  && spawnSync('qemu-io', ['--version'], { encoding: 'utf8' }).status === 0;
if (!HAVE) console.warn('qemu-img/qemu-io not installed: skipping the real-QEMU compatibility tests (apt-get install qemu-utils)');

const dir = HAVE ? mkdtempSync(join(tmpdir(), 'detvm-qemu-img-')) : '';
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const env = { ...process.env, TZ: 'UTC', LC_ALL: 'C' };
function run(cmd: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, maxBuffer: 64 << 20 });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
const io: BlockFileProvider = hostBlockFileProviderCreate();
const path = (n: string): string => join(dir, n);

function detvmCreate(name: string, size: number, opts: { clusterSize?: number; refcountBits?: number } = {}): string {
  const f = io.create(path(name));
  qcow2Create(f, { size, ...opts });
  f.close();
  return path(name);
}

const open = (p: string, readOnly = false): Qcow2State => qcow2Open(io.open(p, readOnly), { readOnly });

function qemuRaw(image: string, snapshot?: string): Uint8Array {
  const out = `${image}.${snapshot ?? 'active'}.raw`;
  const args = ['convert', '-f', 'qcow2', '-O', 'raw', ...(snapshot ? ['-l', `snapshot.name=${snapshot}`] : []), image, out];
  const r = run('qemu-img', args);
  expect(r.status, r.stderr).toBe(0);
  return new Uint8Array(readFileSync(out));
}

function detvmDisk(s: Qcow2State): Uint8Array {
  const b = new Uint8Array(s.size);
  qcow2Pread(s, 0, b);
  return b;
}

const SN = { idStr: '', dateSec: 1_795_719_671, dateNsec: 123_000, vmClockNsec: 464_123_456, vmStateSize: 0 };

describe.skipIf(!HAVE)('real qemu-img / qemu-io 7.2', () => {
  it('qemu-img create and detvm write identical images', () => {
    const cases: Array<[string, number, string[], { clusterSize?: number; refcountBits?: number }]> = [
      ['a', 64 << 20, [], {}],
      ['b', 10 * 2 ** 30, [], {}],
      ['c', 100 << 20, ['-o', 'cluster_size=4096'], { clusterSize: 4096 }],
      ['d', 3 << 20, ['-o', 'cluster_size=512,refcount_bits=1'], { clusterSize: 512, refcountBits: 1 }],
      ['e', 1000, ['-o', 'refcount_bits=64'], { refcountBits: 64 }],
      ['f', 0, [], {}],
    ];
    for (const [n, size, args, opts] of cases) {
      const q = path(`q-${n}.qcow2`);
      expect(run('qemu-img', ['create', '-q', '-f', 'qcow2', ...args, q, String(size)]).status).toBe(0);
      const d = detvmCreate(`d-${n}.qcow2`, size, opts);
      expect(firstDiff(new Uint8Array(readFileSync(d)), new Uint8Array(readFileSync(q))), `${n}: ${args.join(' ')} ${size}`).toBe(-1);
    }
  });

  it(`qemu-img check and qemu-img snapshot -l accept detvm's images (seed ${SEED})`, () => {
    const img = detvmCreate('mix.qcow2', 8 << 20, { clusterSize: 4096 });
    const s = open(img);
    const rng = rngFor('qemu-img-mix');
    const ref = new Uint8Array(8 << 20);
    const snaps = new Map<string, Uint8Array>();
    for (let op = 0; op < 60; op++) {
      const k = prngInt(rng, 10);
      if (k < 6) {
        const [off, len] = randomRange(rng, 8 << 20, 40_000);
        const d = randomBytes(rng, len);
        qcow2Pwrite(s, off, d);
        ref.set(d, off);
      } else if (k < 7) {
        const [off, len] = randomRange(rng, 8 << 20, 40_000);
        qcow2ZeroClusters(s, off, len, prngInt(rng, 2) === 0 ? 'zero' : 'zero-unmap');
        ref.fill(0, off, off + len);
      } else if (k < 9 || snaps.size === 0) {
        const name = `snap${op}`;
        qcow2SaveVmstate(s, 0, randomBytes(rng, 1 + prngInt(rng, 200_000)));
        qcow2SnapshotCreate(s, { ...SN, name, vmStateSize: 0, icount: op % 3 === 0 ? -1 : op * 1000 });
        snaps.set(name, ref.slice());
      } else {
        const names = [...snaps.keys()];
        const name = names[prngInt(rng, names.length)]!;
        if (prngInt(rng, 2) === 0) {
          qcow2SnapshotGoto(s, name);
          ref.set(snaps.get(name)!);
        } else {
          qcow2SnapshotDelete(s, null, name);
          snaps.delete(name);
        }
      }
    }
    const ours = qcow2Check(s);
    qcow2Close(s);
    const chk = run('qemu-img', ['check', img]);
    expect(chk.stderr, `seed ${SEED}`).toBe('');
    expect(chk.status).toBe(0);
    expect(chk.stdout).toContain('No errors were found on the image.');
    expect(qcow2CheckReportText(ours)).toBe(chk.stdout);
    const list = run('qemu-img', ['snapshot', '-l', img]);
    const ro = open(img, true);
    expect(list.stdout).toBe(qemuImgSnapshotListText(qcow2SnapshotList(ro)));
    expect(firstDiff(qemuRaw(img), ref), `seed ${SEED}: active disk through QEMU`).toBe(-1);
    for (const [name, want] of snaps) {
      expect(firstDiff(qemuRaw(img, name), want), `seed ${SEED}: snapshot ${name} through QEMU`).toBe(-1);
    }
    // QEMU's own snapshot operations on detvm's image, then detvm again.
    const names = [...snaps.keys()];
    expect(run('qemu-img', ['snapshot', '-d', names[0]!, img]).status).toBe(0);
    expect(run('qemu-img', ['snapshot', '-a', names[names.length - 1]!, img]).status).toBe(0);
    expect(run('qemu-img', ['snapshot', '-c', 'byqemu', img]).status).toBe(0);
    expect(run('qemu-io', ['-c', 'write -P 0x99 4096 100000', img]).status).toBe(0);
    const after = run('qemu-img', ['check', img]);
    expect([after.status, after.stderr]).toEqual([0, '']);
    const back = open(img);
    expect(qcow2Check(back).messages).toEqual([]);
    qcow2SnapshotGoto(back, 'byqemu');
    expect(firstDiff(detvmDisk(back), snaps.get(names[names.length - 1]!)!)).toBe(-1);
    qcow2SnapshotDelete(back, null, 'byqemu');
    qcow2Close(back);
    expect(run('qemu-img', ['check', img]).status).toBe(0);
  });

  it('QEMU lists a large vmstate and a snapshot\'s icount the way detvm does', () => {
    const img = detvmCreate('vm.qcow2', 64 << 20);
    const s = open(img);
    const vm = randomBytes(rngFor('big-vm'), 10 << 20);
    qcow2SaveVmstate(s, 0, vm);
    qcow2SnapshotCreate(s, { ...SN, name: 'big', vmStateSize: vm.length, icount: 123_456_789 });
    qcow2Close(s);
    const list = run('qemu-img', ['snapshot', '-l', img]).stdout;
    expect(list).toBe(
      'Snapshot list:\nID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT\n'
      + '1         big                10 MiB 2026-11-26 19:01:11 00:00:00.464  123456789\n',
    );
    expect(run('qemu-img', ['check', img]).status).toBe(0);
    const again = open(img);
    qcow2SnapshotGoto(again, 'big');
    const back = new Uint8Array(vm.length);
    qcow2LoadVmstate(again, 0, back);
    expect(firstDiff(back, vm)).toBe(-1);
  });

  it('detvm reads images, zero clusters and snapshots that qemu-img and qemu-io made', () => {
    const img = path('qemu-made.qcow2');
    expect(run('qemu-img', ['create', '-q', '-f', 'qcow2', img, '16M']).status).toBe(0);
    const io1 = run('qemu-io', ['-c', 'write -P 0xab 0 200k', '-c', 'write -P 0x11 1000k 3k', '-c', 'write -z 64k 64k', img]);
    expect(io1.status, io1.stderr).toBe(0);
    expect(run('qemu-img', ['snapshot', '-c', 'first', img]).status).toBe(0);
    const io2 = run('qemu-io', ['-c', 'write -P 0xcd 100k 300k', '-c', 'discard 0 64k', img]);
    expect(io2.status, io2.stderr).toBe(0);
    expect(run('qemu-img', ['snapshot', '-c', 'second', img]).status).toBe(0);
    expect(run('qemu-io', ['-c', 'write -P 0xee 5M 1M', img]).status).toBe(0);
    const active = qemuRaw(img);
    const first = qemuRaw(img, 'first');
    const second = qemuRaw(img, 'second');
    const s = open(img);
    expect(qcow2SnapshotList(s).map((x) => [x.idStr, x.name, x.vmStateSize, x.icount])).toEqual([['1', 'first', 0, 0], ['2', 'second', 0, 0]]);
    expect(qcow2Check(s).messages).toEqual([]);
    expect(firstDiff(detvmDisk(s), active)).toBe(-1);
    qcow2SnapshotGoto(s, 'first');
    expect(firstDiff(detvmDisk(s), first)).toBe(-1);
    qcow2SnapshotGoto(s, '2');
    expect(firstDiff(detvmDisk(s), second)).toBe(-1);
    qcow2SnapshotDelete(s, null, 'first');
    qcow2Pwrite(s, 0, new Uint8Array(70_000).fill(0x77));
    qcow2Close(s);
    const chk = run('qemu-img', ['check', img]);
    expect([chk.status, chk.stderr]).toEqual([0, '']);
    expect(run('qemu-io', ['-c', 'read -P 0x77 0 70000', img]).stdout).not.toContain('Pattern verification failed');
  });

  it('detvm works on version 2 (compat=0.10) images without using v3 features', () => {
    const img = path('v2.qcow2');
    expect(run('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'compat=0.10', img, '4M']).status).toBe(0);
    expect(run('qemu-io', ['-c', 'write -P 0x21 0 1M', img]).status).toBe(0);
    expect(run('qemu-img', ['snapshot', '-c', 'old', img]).status).toBe(0);
    const s = open(img);
    expect(s.version).toBe(2);
    expect(qcow2SnapshotList(s).map((x) => [x.name, x.icount])).toEqual([['old', 0]]);
    qcow2Pwrite(s, 0, new Uint8Array(100_000).fill(0x42));
    qcow2ZeroClusters(s, 65536, 65536, 'zero');
    qcow2ZeroClusters(s, 3 << 20, 65536, 'discard');
    qcow2SnapshotCreate(s, { ...SN, name: 'new', icount: 5 });
    qcow2SnapshotGoto(s, 'old');
    qcow2Close(s);
    const chk = run('qemu-img', ['check', img]);
    expect([chk.status, chk.stderr]).toEqual([0, '']);
    const want = new Uint8Array(4 << 20);
    want.fill(0x21, 0, 1 << 20);
    expect(firstDiff(qemuRaw(img), want)).toBe(-1);
    want.fill(0x42, 0, 100_000);
    want.fill(0, 65536, 131072);
    expect(firstDiff(qemuRaw(img, 'new'), want)).toBe(-1);
  });

  it('detvm reads compressed clusters written by qemu-img convert -c', () => {
    const raw = path('src.raw');
    const data = new Uint8Array(3 << 20);
    const rng = rngFor('compress');
    for (let off = 0; off < data.length; off += 65536) {
      if (prngInt(rng, 3) === 0) continue; // some all-zero clusters
      data.set(randomBytes(rng, 65536).map((x) => x & 0x0f), off); // compressible
    }
    writeFileSync(raw, data);
    const img = path('compressed.qcow2');
    expect(run('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', raw, img]).status).toBe(0);
    const s = open(img);
    const r = qcow2Check(s);
    expect([r.compressedClusters > 0, r.corruptions, r.leaks]).toEqual([true, 0, 0]);
    expect(firstDiff(detvmDisk(s), data)).toBe(-1);
    // Writing into a compressed cluster copies it out; snapshots keep sharing the others.
    qcow2SnapshotCreate(s, { ...SN, name: 'c', icount: -1 });
    qcow2Pwrite(s, 65536 + 100, new Uint8Array(10).fill(0xff));
    data.fill(0xff, 65536 + 100, 65536 + 110);
    expect(firstDiff(detvmDisk(s), data)).toBe(-1);
    qcow2Close(s);
    expect(run('qemu-img', ['check', img]).status).toBe(0);
  });

  it('detvm\'s open errors are qemu-img\'s texts', () => {
    for (const c of OPEN_ERROR_CASES) {
      const p = path(`bad-${c.what.replace(/\W+/g, '-')}.qcow2`);
      writeFileSync(p, craftedImage(c.patch));
      const r = run('qemu-img', ['info', '-f', 'qcow2', p]);
      expect(r.stderr.trim(), c.what).toBe(`qemu-img: Could not open '${p}': ${c.message}`);
    }
  });

  it('detvm\'s check reports leaks and corruptions with qemu-img\'s lines and totals', () => {
    const img = detvmCreate('leaky.qcow2', 1 << 20, { clusterSize: 4096 });
    const s = open(img);
    qcow2Pwrite(s, 0, new Uint8Array(64 << 10).fill(1));
    const block = s.refcountTable[0]!;
    s.file.pwrite(block + 2 * 6, new Uint8Array([0, 2])); // a leak
    s.file.pwrite(block + 2 * 40, new Uint8Array([0, 1])); // a leak past the end of the image
    qcow2Close(s);
    const ours = qcow2Check(open(img, true));
    const q = run('qemu-img', ['check', img]);
    expect(q.status).toBe(2); // corruptions: the COPIED flag of cluster 6
    expect(q.stderr.trim().split('\n')).toEqual(ours.messages);
    expect(q.stdout).toBe(qcow2CheckReportText(ours));
  });
});
