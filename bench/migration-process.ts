// Whole-process migration measurements for bench/migration.bench.ts: the same driver runs detvm
// (`node bin/detvm.js`) and real QEMU 7.2 (qemu-system-riscv32) side by side. The guest is a raw
// image of N MiB of PRNG bytes (all of RAM) whose first two words are `wfi; j .-4`, so the VM
// runs but idles and every page is random. The source migrates with max-bandwidth 0 (unlimited
// in QEMU 7.2) to a file (detvm: file:PATH; QEMU 7.2 has no file: URI, so exec:cat > PATH) or
// over loopback TCP to a destination process started with -incoming tcp:127.0.0.1:PORT. Reported
// per run: the source's own `total-time` and `downtime` (query-migrate) and, for TCP, the wall
// time from the migrate command until the destination's RESUME event (the guest runs there).
// DETVM_BENCH_NODE_ARGS adds node options to detvm's processes (e.g. --cpu-prof).
// Bench code only: real time and real processes are fine here.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prngCreate, prngNextU32 } from '../core/util/index.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const QEMU_BIN = 'qemu-system-riscv32';

export type Emulator = 'detvm' | 'qemu';

export interface MigrationRun {
  totalMs: number;
  downtimeMs: number;
  /** TCP only: migrate command → RESUME on the destination, wall time. */
  destRunningMs: number | null;
}

/** Whether real QEMU can be run here. */
export function qemuAvailable(): boolean {
  const r = spawnSync(QEMU_BIN, ['--version'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('version 7.2');
}

/** Write the random-filled guest image: `wfi; j .-4`, then PRNG words up to `mib` MiB. */
export function writeRandomImage(path: string, mib: number, seed: number): void {
  const fd = openSync(path, 'w');
  const rng = prngCreate(seed);
  const chunk = new Uint8Array(1 << 20);
  const words = new Uint32Array(chunk.buffer);
  for (let i = 0; i < mib; i++) {
    for (let w = 0; w < words.length; w++) words[w] = prngNextU32(rng);
    if (i === 0) {
      words[0] = 0x10500073; // wfi
      words[1] = 0xffdff06f; // j .-4
    }
    writeSync(fd, chunk);
  }
  closeSync(fd);
}

interface Proc {
  proc: ChildProcess;
  events: string[];
  waiters: Array<() => void>;
  err: string;
  qmp(cmd: string, args?: Record<string, unknown>): Promise<Record<string, unknown>>;
}

async function until(p: Proc, cond: () => boolean, what: string): Promise<void> {
  while (!cond()) {
    if (p.proc.exitCode !== null) throw new Error(`the emulator exited before ${what}: ${p.err}`);
    await new Promise<void>((r) => p.waiters.push(r));
  }
}

function wake(p: Proc): void {
  const w = p.waiters;
  p.waiters = [];
  for (const f of w) f();
}

async function launch(emu: Emulator, sock: string, args: string[]): Promise<Proc> {
  const qmpArg = ['-qmp', `unix:${sock},server=on,wait=on`];
  const proc = emu === 'detvm'
    ? spawn(process.execPath, [...(process.env['DETVM_BENCH_NODE_ARGS']?.split(' ') ?? []), 'bin/detvm.js', ...args, ...qmpArg], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn(QEMU_BIN, [...args, ...qmpArg], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  const p: Proc = { proc, events: [], waiters: [], err: '', qmp: () => Promise.reject(new Error('not connected')) };
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    p.err += d;
    wake(p);
  });
  proc.on('exit', () => wake(p));
  await until(p, () => p.err.includes('waiting for connection on'), 'its QMP listener');
  const s = connect(sock);
  await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
  const pending: Array<(r: { return?: Record<string, unknown>; error?: { desc: string } }) => void> = [];
  let buf = '';
  s.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const msg = JSON.parse(buf.slice(0, i)) as { event?: string; data?: { status?: string }; QMP?: unknown };
      buf = buf.slice(i + 1);
      if (msg.event !== undefined) {
        p.events.push(msg.data?.status ? `${msg.event} ${msg.data.status}` : msg.event);
        wake(p);
      } else if (msg.QMP === undefined) {
        pending.shift()?.(msg as { return?: Record<string, unknown> });
      }
    }
  });
  p.qmp = (cmd, a) => new Promise((resolve, reject) => {
    pending.push((r) => (r.error ? reject(new Error(`${cmd}: ${r.error.desc}`)) : resolve(r.return ?? {})));
    s.write(JSON.stringify({ execute: cmd, ...(a ? { arguments: a } : {}) }) + '\n');
  });
  await p.qmp('qmp_capabilities');
  return p;
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function quit(p: Proc): Promise<void> {
  if (p.proc.exitCode !== null) return;
  const exited = new Promise<void>((r) => p.proc.once('exit', () => r()));
  void p.qmp('quit').catch(() => undefined);
  await exited;
}

/** One migration of the image `image` (`mib` MiB) by `emu`, to `target` ('file' or 'tcp'). */
export async function migrateOnce(
  emu: Emulator, image: string, mib: number, target: 'file' | 'tcp', dir: string,
): Promise<MigrationRun> {
  const common = emu === 'detvm'
    ? ['-M', 'virt', '-m', `${mib}M`, '-display', 'none', '-serial', 'none', '-bios', 'none', '-kernel', image]
    : ['-M', 'virt', '-m', `${mib}M`, '-display', 'none', '-serial', 'none', '-monitor', 'none', '-bios', 'none',
      '-device', `loader,file=${image},addr=0x80000000`];
  let dst: Proc | null = null;
  let uri = emu === 'detvm' ? `file:${join(dir, `${emu}-${mib}.mig`)}` : `exec:cat > ${join(dir, `${emu}-${mib}.mig`)}`;
  if (target === 'tcp') {
    const port = await freePort();
    uri = `tcp:127.0.0.1:${port}`;
    dst = await launch(emu, join(dir, `${emu}-dst.qmp`), [...common, '-incoming', uri]);
  }
  const src = await launch(emu, join(dir, `${emu}-src.qmp`), common);
  try {
    await src.qmp('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    await src.qmp('migrate-set-parameters', { 'max-bandwidth': 0 });
    const t0 = process.hrtime.bigint();
    await src.qmp('migrate', { uri });
    const end = (): boolean => src.events.includes('MIGRATION completed') || src.events.includes('MIGRATION failed');
    await until(src, end, 'the end of the migration');
    if (!src.events.includes('MIGRATION completed')) throw new Error(`${emu} migration failed: ${JSON.stringify(await src.qmp('query-migrate'))}`);
    let destRunningMs: number | null = null;
    if (dst !== null) {
      const d = dst;
      await until(d, () => d.events.includes('RESUME'), 'the destination running');
      destRunningMs = Number(process.hrtime.bigint() - t0) / 1e6;
    }
    // QEMU 7.2 sends "completed" from its migration thread before it stores total-time and
    // downtime (migration_calculate_complete runs after), so a prompt query may read zeros.
    let info = await src.qmp('query-migrate');
    for (let i = 0; i < 100 && Number(info['total-time'] ?? 0) === 0; i++) {
      await new Promise((r) => setTimeout(r, 5));
      info = await src.qmp('query-migrate');
    }
    return { totalMs: Number(info['total-time']), downtimeMs: Number(info['downtime']), destRunningMs };
  } finally {
    await quit(src);
    if (dst !== null) await quit(dst);
  }
}
