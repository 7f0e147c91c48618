// Record/replay benchmarks (issue 9), all on in-process live machines (real clocks, real sockets):
// record overhead (guest MIPS while recording / plain, busy guest), replay speed versus record
// speed (the tick guest's recording against its replay, and the busy guest's MIPS, where record
// and replay do the same work), log bytes per guest second for the tick guest (demo.elf, two
// harts, serial to a file),
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
import { replayHeaderDecode } from '../core/replay/index.ts';
import { prngCreate, prngInt } from '../core/util/index.ts';
import { type BenchRow, percentiles } from './harness.ts';

const GUEST_SECONDS = Number(process.env.BENCH_REPLAY_SECONDS ?? 10);
const SEEKS = Number(process.env.BENCH_REPLAY_SEEKS ?? 50);
const PINGS = Number(process.env.BENCH_REPLAY_PINGS ?? 300);

/** A guest that arms no timers: `wfi; j .-4` at the RAM base. */
const IDLE_GUEST = { name: 'idle.bin', bytes: new Uint8Array([0x73, 0x00, 0x50, 0x10, 0xef, 0xf0, 0xdf, 0xff]) };
/** A guest that computes forever (`j .`): busyloop.elf exits after 300M instructions, sooner than the pings end. */
const BUSY_GUEST = { name: 'spin.bin', bytes: new Uint8Array([0x6f, 0x00, 0x00, 0x00]) };

interface LiveRun {
  vm: DetvmMachine;
  wallMs: number;
  /** CPU time of this process during the run (user + system). */
  cpuMs: number;
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
  const c0 = process.cpuUsage();
  const run = runLive(vm.kernel, live.io(), () => {
    if (done(vm)) run.stop();
  });
  if (during) await during(vm, () => live.io().wake());
  await run.done;
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000;
  const icount = vm.kernel.clocks.icount;
  vm.close();
  live.io().close();
  return { vm, wallMs, cpuMs, icount, log: cfg.record ? vm.replay!.log() : null };
}

function mips(r: { icount: number; wallMs: number }): number {
  return r.icount / r.wallMs / 1000;
}

const med = (xs: number[]): number => percentiles(xs).median;

interface Speeds {
  plain: number;
  recording: number;
  replay: number;
  /** The same from CPU time rather than wall time (less sensitive to other processes). */
  cpu: { plain: number; recording: number; replay: number };
  log: Uint8Array;
}

const ROUNDS = Number(process.env.BENCH_REPLAY_ROUNDS ?? 6);

/**
 * Guest MIPS of the busy guest: plain, recording, and replaying the recording just made. Each
 * round runs the three in turn, so that load from other processes falls on all of them alike.
 */
async function recordOverhead(): Promise<Speeds> {
  const cfg: MachineConfig = { kernel: 'guests/bin/busyloop.elf', serial: null };
  const exited = (vm: DetvmMachine): boolean => vm.exitStatus() !== null;
  const wall = { plain: [] as number[], rec: [] as number[], replay: [] as number[] };
  const cpu = { plain: [] as number[], rec: [] as number[], replay: [] as number[] };
  let log: Uint8Array | null = null;
  for (let i = 0; i < ROUNDS; i++) {
    const p = await liveRun(cfg, exited);
    const r = await liveRun({ ...cfg, record: {} }, exited);
    log = r.log;
    const vm = createMachine({ ...cfg, clock: 'live', replay: { log: log! } });
    const t0 = process.hrtime.bigint();
    const c0 = process.cpuUsage();
    const rr = vm.replay!.run();
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const c = process.cpuUsage(c0);
    if (rr.stop !== 'end') throw new Error(`replay stopped: ${rr.stop} ${vm.replay!.divergence() ?? ''}`);
    // The first round warms the JIT; the medians of the later ones are the figures.
    if (i === 0) continue;
    wall.plain.push(mips(p));
    wall.rec.push(mips(r));
    wall.replay.push(vm.kernel.clocks.icount / ms / 1000);
    cpu.plain.push(p.icount / p.cpuMs / 1000);
    cpu.rec.push(r.icount / r.cpuMs / 1000);
    cpu.replay.push(vm.kernel.clocks.icount / ((c.user + c.system) / 1000) / 1000);
  }
  return {
    plain: med(wall.plain), recording: med(wall.rec), replay: med(wall.replay),
    cpu: { plain: med(cpu.plain), recording: med(cpu.rec), replay: med(cpu.replay) }, log: log!,
  };
}

const TICK_CONFIG = (dir: string): MachineConfig => ({ kernel: 'guests/bin/demo.elf', smp: 2, serial: `file:${join(dir, 'serial.txt')}` });

async function tickRecording(dir: string): Promise<{ log: Uint8Array; guestSeconds: number; wallMs: number }> {
  const r = await liveRun(
    { ...TICK_CONFIG(dir), record: {} },
    (vm) => qemuClockGetNs(vm.kernel.clocks, QEMU_CLOCK_VIRTUAL) >= GUEST_SECONDS * 1e9,
  );
  return { log: r.log!, guestSeconds: qemuClockGetNs(r.vm.kernel.clocks, QEMU_CLOCK_VIRTUAL) / 1e9, wallMs: r.wallMs };
}

/**
 * Wall time of replaying the tick recording start to end (median of 3). The recording took
 * real time wherever the harts slept; the replay knows every input in advance and warps
 * through the sleeps, as QEMU's replay does.
 */
function tickReplayMs(log: Uint8Array, dir: string): number {
  const ms: number[] = [];
  for (let i = 0; i < 3; i++) {
    const vm = createMachine({ ...TICK_CONFIG(dir), clock: 'live', replay: { log } });
    const t0 = process.hrtime.bigint();
    const r = vm.replay!.run();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (r.stop !== 'end') throw new Error(`tick replay stopped: ${r.stop} ${vm.replay!.divergence() ?? ''}`);
    vm.close();
  }
  return med(ms);
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
async function qmpWhileRecording(kernel: MachineConfig['kernel'], record = true): Promise<{ median: number; p99: number }> {
  const rtts: number[] = [];
  await liveRun({ kernel, serial: null, qmp: ['tcp:127.0.0.1:0,server=on,wait=off'], ...(record ? { record: {} } : {}) }, () => false, async (vm, wake) => {
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
    const stage = (what: string): void => void process.stderr.write(`replay bench: ${what}\n`);
    stage('record overhead');
    const o = await recordOverhead();
    stage(`tick guest, ${GUEST_SECONDS} guest seconds`);
    const tick = await tickRecording(dir);
    stage('seek latency');
    const tickReplay = tickReplayMs(tick.log, dir);
    const seek = seekLatency(tick.log, dir);
    stage('QMP while recording, idle guest');
    const idle = await qmpWhileRecording(IDLE_GUEST);
    stage('QMP while recording, busy guest');
    const busy = await qmpWhileRecording(BUSY_GUEST);
    const busyPlain = await qmpWhileRecording(BUSY_GUEST, false);
    const perSec = tick.log.length / tick.guestSeconds;
    const headerBytes = replayHeaderDecode(tick.log, 'tick').eventsAt;
    return [
      { name: 'guest MIPS, live, plain (busyloop)', value: o.plain, unit: 'MIPS' },
      { name: 'guest MIPS, live, recording', value: o.recording, unit: 'MIPS' },
      { name: 'record overhead: recording / plain', value: o.recording / o.plain, unit: 'x', target: '>= 0.95', pass: o.recording / o.plain >= 0.95, note: `by CPU time ${(o.cpu.recording / o.cpu.plain).toFixed(3)}` },
      {
        name: `replay speed / record speed, tick guest (${tick.guestSeconds.toFixed(1)} guest s)`, value: tick.wallMs / tickReplay, unit: 'x', target: '>= 1.0', pass: tick.wallMs >= tickReplay,
        note: `recorded in ${tick.wallMs.toFixed(0)} ms, replayed in ${tickReplay.toFixed(0)} ms`,
      },
      {
        name: 'replay speed / record speed, CPU-bound guest (busyloop)', value: o.replay / o.recording, unit: 'x', target: '1.0: same instructions, same slices',
        note: `replay ${o.replay.toFixed(0)} MIPS; by CPU time ${(o.cpu.replay / o.cpu.recording).toFixed(3)}`,
      },
      { name: `log bytes per guest second, tick guest (${tick.guestSeconds.toFixed(1)} s, 2 harts)`, value: perSec, unit: 'B/s', target: '< 3400 B/s (QEMU 7.2)', pass: perSec < 3400, note: `${tick.log.length} bytes, of which a ${headerBytes}-byte header` },
      { name: `seek latency, ${GUEST_SECONDS}-guest-second recording, median of ${SEEKS}`, value: seek.median, unit: 'ms', target: '< 200 ms', pass: seek.median < 200, note: `p99 ${seek.p99.toFixed(1)} ms; first seek (whole replay) ${seek.first.toFixed(0)} ms` },
      { name: 'QMP round trip while recording, idle guest (no timers)', value: idle.median, unit: 'ms', target: '< 1 ms', pass: idle.median < 1, note: `p99 ${idle.p99.toFixed(2)} ms` },
      { name: 'QMP round trip while recording, busy guest', value: busy.median, unit: 'ms', note: `p99 ${busy.p99.toFixed(2)} ms; not recording: median ${busyPlain.median.toFixed(2)} ms, p99 ${busyPlain.p99.toFixed(2)} ms` },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
