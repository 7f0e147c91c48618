// Record/replay benchmarks (issue 9), all on in-process live machines (real clocks, real sockets):
// record overhead (guest MIPS while recording / plain, busy guest), replay speed versus record
// speed, log bytes per guest second for the tick guest (demo.elf, two harts, serial to a file),
// seek latency to random points of that 10-guest-second recording, and the QMP round trip while
// recording (a guest that arms no timers, as QEMU 7.2 was measured with, and a busy one).
import * as net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMachine, type DetvmMachine, type MachineConfig } from '../index.ts';
import { liveHost, liveStartup, runLive } from '../bin/live.ts';
import { QEMU_CLOCK_VIRTUAL, qemuClockGetNs } from '../core/loop/index.ts';
import { charState } from '../core/char/index.ts';
import { prngCreate, prngInt } from '../core/util/index.ts';
import { type BenchRow, percentiles } from './harness.ts';

const GUEST_SECONDS = Number(process.env.BENCH_REPLAY_SECONDS ?? 10);
const SEEKS = Number(process.env.BENCH_REPLAY_SEEKS ?? 50);
const PINGS = Number(process.env.BENCH_REPLAY_PINGS ?? 300);

/** A guest that arms no timers: `wfi; j .-4` at the RAM base. */
const IDLE_GUEST = { name: 'idle.bin', bytes: new Uint8Array([0x73, 0x00, 0x50, 0x10, 0xef, 0xf0, 0xdf, 0xff]) };

interface LiveRun {
  vm: DetvmMachine;
  wallMs: number;
  icount: number;
  log: Uint8Array | null;
}

/** Run a live machine until `done(vm)` (checked after each iteration), then close it. */
async function liveRun(cfg: MachineConfig, done: (vm: DetvmMachine) => boolean, during?: (vm: DetvmMachine, wake: () => void) => Promise<void>): Promise<LiveRun> {
  const live = liveHost();
  const vm = createMachine({ ...cfg, clock: 'live', host: live.host });
  const err = await liveStartup(vm.kernel, live.io());
  if (err) throw new Error(err);
  const t0 = process.hrtime.bigint();
  const run = runLive(vm.kernel, live.io(), () => {
    if (done(vm)) run.stop();
  });
  if (during) await during(vm, () => live.io().wake());
  await run.done;
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const icount = vm.kernel.clocks.icount;
  vm.close();
  live.io().close();
  return { vm, wallMs, icount, log: cfg.record ? vm.replay!.log() : null };
}

function mips(r: { icount: number; wallMs: number }): number {
  return r.icount / r.wallMs / 1000;
}

const med = (xs: number[]): number => percentiles(xs).median;

async function recordOverhead(): Promise<{ plain: number; recording: number; replay: number; log: Uint8Array }> {
  const cfg: MachineConfig = { kernel: 'guests/bin/busyloop.elf', serial: null };
  const exited = (vm: DetvmMachine): boolean => vm.exitStatus() !== null;
  const plain: number[] = [];
  const rec: number[] = [];
  let log: Uint8Array | null = null;
  for (let i = 0; i < 4; i++) {
    plain.push(mips(await liveRun(cfg, exited)));
    const r = await liveRun({ ...cfg, record: {} }, exited);
    rec.push(mips(r));
    log = r.log;
  }
  const replay: number[] = [];
  for (let i = 0; i < 3; i++) {
    const vm = createMachine({ ...cfg, clock: 'live', replay: { log: log! } });
    const t0 = process.hrtime.bigint();
    const r = vm.replay!.run();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (r.stop !== 'end') throw new Error(`replay stopped: ${r.stop} ${vm.replay!.divergence() ?? ''}`);
    replay.push(vm.kernel.clocks.icount / ms / 1000);
  }
  // The first runs warm the JIT; the medians of the later ones are the figures.
  return { plain: med(plain.slice(1)), recording: med(rec.slice(1)), replay: med(replay), log: log! };
}

async function tickRecording(dir: string): Promise<{ log: Uint8Array; guestSeconds: number }> {
  const r = await liveRun(
    { kernel: 'guests/bin/demo.elf', smp: 2, serial: `file:${join(dir, 'serial.txt')}`, record: {} },
    (vm) => qemuClockGetNs(vm.kernel.clocks, QEMU_CLOCK_VIRTUAL) >= GUEST_SECONDS * 1e9,
  );
  return { log: r.log!, guestSeconds: qemuClockGetNs(r.vm.kernel.clocks, QEMU_CLOCK_VIRTUAL) / 1e9 };
}

function seekLatency(log: Uint8Array, dir: string): { median: number; p99: number; first: number } {
  const vm = createMachine({ kernel: 'guests/bin/demo.elf', smp: 2, serial: `file:${join(dir, 'serial.txt')}`, clock: 'live', replay: { log } });
  const h = vm.replay!;
  const last = h.status().lastIcount;
  const rng = prngCreate(9);
  let t0 = process.hrtime.bigint();
  h.seek(last); // the first seek replays the whole log once (timeline and snapshots)
  const first = Number(process.hrtime.bigint() - t0) / 1e6;
  const ms: number[] = [];
  for (let i = 0; i < SEEKS; i++) {
    const target = prngInt(rng, last + 1);
    t0 = process.hrtime.bigint();
    const err = h.seek(target);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (err) throw new Error(`seek ${target}: ${err}`);
  }
  return { ...percentiles(ms), first };
}

/** QMP query-status round trips against a recording live machine running `kernel`. */
async function qmpWhileRecording(kernel: MachineConfig['kernel']): Promise<{ median: number; p99: number }> {
  const rtts: number[] = [];
  await liveRun({ kernel, serial: null, qmp: ['tcp:127.0.0.1:0,server=on,wait=off'], record: {} }, () => false, async (vm, wake) => {
    const port = Number(/:(\d+),server=on/.exec(charState(vm.kernel).chardevs.get('compat_monitor0')!.filename)![1]);
    const s = net.connect({ host: '127.0.0.1', port });
    s.setNoDelay(true);
    let buf = '';
    let waiter: (() => void) | null = null;
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      wake();
      if (waiter && buf.includes('"return"')) waiter();
    });
    const reply = (): Promise<void> => new Promise((resolve) => {
      waiter = () => {
        waiter = null;
        buf = '';
        resolve();
      };
      if (buf.includes('"return"')) waiter();
    });
    await new Promise<void>((r) => s.once('connect', () => r()));
    const caps = reply();
    s.write('{"execute":"qmp_capabilities"}\n');
    await caps;
    for (let i = 0; i < PINGS; i++) {
      const t0 = process.hrtime.bigint();
      const p = reply();
      s.write('{"execute":"query-status"}\n');
      await p;
      rtts.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    s.write('{"execute":"quit"}\n');
    s.end();
  });
  return percentiles(rtts.slice(10));
}

export async function run(): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'detvm-replay-bench-'));
  try {
    const o = await recordOverhead();
    const tick = await tickRecording(dir);
    const seek = seekLatency(tick.log, dir);
    const idle = await qmpWhileRecording(IDLE_GUEST);
    const busy = await qmpWhileRecording('guests/bin/busyloop.elf');
    const perSec = tick.log.length / tick.guestSeconds;
    return [
      { name: 'guest MIPS, live, plain (busyloop)', value: o.plain, unit: 'MIPS' },
      { name: 'guest MIPS, live, recording', value: o.recording, unit: 'MIPS' },
      { name: 'record overhead: recording / plain', value: o.recording / o.plain, unit: 'x', target: '>= 0.95', pass: o.recording / o.plain >= 0.95 },
      { name: 'replay speed / record speed', value: o.replay / o.recording, unit: 'x', target: '>= 1.0', pass: o.replay >= o.recording, note: `replay ${o.replay.toFixed(0)} MIPS` },
      { name: `log bytes per guest second, tick guest (${tick.guestSeconds.toFixed(1)} s, 2 harts)`, value: perSec, unit: 'B/s', target: '< 3400 B/s (QEMU 7.2)', pass: perSec < 3400, note: `${tick.log.length} bytes with a ${(tick.log.length - perSec * tick.guestSeconds).toFixed(0)}-byte header` },
      { name: `seek latency, ${GUEST_SECONDS}-guest-second recording, median of ${SEEKS}`, value: seek.median, unit: 'ms', target: '< 200 ms', pass: seek.median < 200, note: `p99 ${seek.p99.toFixed(1)} ms; first seek (whole replay) ${seek.first.toFixed(0)} ms` },
      { name: 'QMP round trip while recording, idle guest (no timers)', value: idle.median, unit: 'ms', target: '< 1 ms', pass: idle.median < 1, note: `p99 ${idle.p99.toFixed(2)} ms` },
      { name: 'QMP round trip while recording, busy guest', value: busy.median, unit: 'ms', note: `p99 ${busy.p99.toFixed(2)} ms` },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
