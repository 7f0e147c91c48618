// Migration benchmarks (issue 7), file-based: save 64 MiB and 256 MiB of random-filled guest RAM
// (plus the timer and globalstate sections) to a file with qemuSavevmState, then load the file
// into a second machine through the incremental loader in 4 MiB reads (parse and stage), and
// apply it (commit). Real QEMU 7.2 needs about
// 160 ms (64 MiB) and 380 ms (256 MiB) for a whole migration with unlimited bandwidth.
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loopMachineCreate } from '../core/loop/index.ts';
import { addressSpaceCreate, addressSpaceWrite, RAM_BASE } from '../core/memory/index.ts';
import {
  cpuTimersRegister, globalStateCreate, globalStateStore, loadvmCommit, loadvmCreate, loadvmFeed,
  qemuFclose, qemuFileWriterCreate, qemuSavevmState, ramBlockFromRam, ramMigInit, savevmStateCreate,
  vmstateGlobalState, vmstateRegister, type SaveVMState,
} from '../core/migration/index.ts';
import { prngCreate, prngNextU32 } from '../core/util/index.ts';
import { type BenchRow, timeMs } from './harness.ts';

function machine(ramBytes: number): { sv: SaveVMState; fill: (seed: number) => void } {
  const m = loopMachineCreate();
  const sv = savevmStateCreate('virt');
  const as = addressSpaceCreate(ramBytes);
  const gs = globalStateCreate();
  globalStateStore(gs, 'running');
  cpuTimersRegister(sv, m.clocks);
  ramMigInit(sv, [ramBlockFromRam(as, 'riscv_virt_board.ram')]);
  vmstateRegister(sv, 0, vmstateGlobalState, gs);
  const fill = (seed: number): void => {
    const rng = prngCreate(seed);
    const chunk = new Uint8Array(65536);
    const words = new Uint32Array(chunk.buffer);
    for (let off = 0; off < ramBytes; off += chunk.length) {
      for (let i = 0; i < words.length; i++) words[i] = prngNextU32(rng);
      addressSpaceWrite(as, RAM_BASE + off, chunk);
    }
  };
  return { sv, fill };
}

async function one(mib: number, dir: string): Promise<BenchRow[]> {
  const bytes = mib * 1024 * 1024;
  const src = machine(bytes);
  src.fill(mib);
  const path = join(dir, `ram-${mib}.mig`);
  const saveMs = await timeMs(() => {
    const fd = openSync(path, 'w');
    const f = qemuFileWriterCreate((b) => (writeSync(fd, b), 0), 256 * 1024);
    const fail = qemuSavevmState(src.sv, f);
    qemuFclose(f);
    closeSync(fd);
    if (fail) throw new Error(fail.messages.join('\n'));
  });
  const dst = machine(bytes);
  // Read the file in pieces as an incoming migration would, then apply it.
  let commitMs = 0;
  const loadMs = await timeMs(async () => {
    const ls = loadvmCreate(dst.sv);
    const fd = openSync(path, 'r');
    for (;;) {
      const chunk = new Uint8Array(4 << 20);
      const n = readSync(fd, chunk);
      if (n === 0) break;
      loadvmFeed(ls, chunk.subarray(0, n));
    }
    closeSync(fd);
    if (loadvmFeed(ls, null) !== 'loaded') throw new Error(ls.failure?.messages.join('\n'));
    commitMs = await timeMs(() => loadvmCommit(ls));
  });
  const qemuMs = mib === 64 ? 160 : 380;
  return [
    { name: `save ${mib} MiB to a file`, value: saveMs, unit: 'ms' },
    {
      name: `load ${mib} MiB from the file (atomic)`, value: loadMs, unit: 'ms',
      note: `commit ${commitMs.toFixed(0)} ms`,
    },
    {
      name: `migrate ${mib} MiB via a file, total`, value: saveMs + loadMs, unit: 'ms',
      target: `<= QEMU 7.2 (~${qemuMs} ms)`, pass: saveMs + loadMs <= qemuMs,
    },

  ];
}

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'detvm-mig-bench-'));
  try {
    return [...(await one(64, dir)), ...(await one(256, dir))];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
