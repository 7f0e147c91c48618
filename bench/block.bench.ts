// Block layer benchmarks (issue 8 part 1): the qcow2 work of savevm and loadvm with 64 MiB of
// random VM state on a host file (vmstate write + snapshot create; snapshot goto + vmstate read),
// next to qemu-io writing and reading the same 64 MiB into a qcow2 image when qemu-utils is
// installed; and 4 KiB random guest writes on an in-memory image.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  qcow2Close, qcow2Create, qcow2LoadVmstate, qcow2Open, qcow2Pwrite, qcow2SaveVmstate, qcow2SnapshotCreate,
  qcow2SnapshotGoto, memBlockFileProviderCreate,
} from '../core/block/index.ts';
import { hostBlockFileProviderCreate } from '../core/host/block-file.ts';
import { prngCreate, prngInt, prngNextU32 } from '../core/util/index.ts';
import { type BenchRow, percentiles, timeMs } from './harness.ts';

const VM = 64 << 20;
const CHUNK = 1 << 20;

function randomState(): Uint8Array {
  const rng = prngCreate(8);
  const b = new Uint8Array(VM);
  const w = new Uint32Array(b.buffer);
  for (let i = 0; i < w.length; i++) w[i] = prngNextU32(rng);
  return b;
}

async function savevmLoadvm(dir: string, state: Uint8Array): Promise<{ save: number; load: number }> {
  const io = hostBlockFileProviderCreate();
  const path = join(dir, `vm-${Math.random().toString(36).slice(2)}.qcow2`);
  const f = io.create(path);
  qcow2Create(f, { size: 1 << 30 });
  f.close();
  const s = qcow2Open(io.open(path, false), { readOnly: false });
  const save = await timeMs(() => {
    for (let pos = 0; pos < VM; pos += CHUNK) qcow2SaveVmstate(s, pos, state.subarray(pos, pos + CHUNK));
    qcow2SnapshotCreate(s, { idStr: '', name: 'bench', vmStateSize: VM, dateSec: 0, dateNsec: 0, vmClockNsec: 0, icount: -1 });
  });
  const back = new Uint8Array(VM);
  const load = await timeMs(() => {
    qcow2SnapshotGoto(s, 'bench');
    for (let pos = 0; pos < VM; pos += CHUNK) qcow2LoadVmstate(s, pos, back.subarray(pos, pos + CHUNK));
  });
  qcow2Close(s);
  rmSync(path);
  if (back[VM - 1] !== state[VM - 1]) throw new Error('vmstate read back differs');
  return { save, load };
}

function qemuIo(dir: string): { write: number; read: number } | null {
  if (spawnSync('qemu-io', ['--version']).status !== 0) return null;
  const img = join(dir, 'qemu.qcow2');
  spawnSync('qemu-img', ['create', '-q', '-f', 'qcow2', img, '1G']);
  const t0 = process.hrtime.bigint();
  spawnSync('qemu-io', ['-c', `write -P 0x5a 0 ${VM}`, '-c', 'flush', img]);
  const t1 = process.hrtime.bigint();
  spawnSync('qemu-io', ['-c', `read -P 0x5a 0 ${VM}`, img]);
  const t2 = process.hrtime.bigint();
  return { write: Number(t1 - t0) / 1e6, read: Number(t2 - t1) / 1e6 };
}

async function randomWrites(): Promise<number> {
  const p = memBlockFileProviderCreate();
  const f = p.create('r.qcow2');
  qcow2Create(f, { size: 256 << 20 });
  f.close();
  const s = qcow2Open(p.open('r.qcow2', false), { readOnly: false });
  const rng = prngCreate(3);
  const buf = new Uint8Array(4096).fill(1);
  const n = 20_000;
  const ms = await timeMs(() => {
    for (let i = 0; i < n; i++) qcow2Pwrite(s, prngInt(rng, 65536) * 4096, buf);
  });
  return (n / ms) * 1000;
}

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'detvm-bench-block-'));
  try {
    const state = randomState();
    const saves: number[] = [];
    const loads: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await savevmLoadvm(dir, state);
      saves.push(r.save);
      loads.push(r.load);
    }
    const rows: BenchRow[] = [
      { name: 'qcow2 vmstate write 64 MiB + snapshot create (host file)', value: percentiles(saves).median, unit: 'ms', note: '1 MiB chunks, median of 5' },
      { name: 'qcow2 snapshot goto + vmstate read 64 MiB (host file)', value: percentiles(loads).median, unit: 'ms', note: 'median of 5' },
    ];
    const q = qemuIo(dir);
    if (q) {
      rows.push({ name: 'qemu-io write 64 MiB + flush (reference)', value: q.write, unit: 'ms', note: 'includes process start' });
      rows.push({ name: 'qemu-io read 64 MiB (reference)', value: q.read, unit: 'ms', note: 'includes process start' });
    }
    rows.push({ name: 'qcow2 4 KiB random writes (in memory)', value: await randomWrites(), unit: 'writes/s' });
    return rows;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
