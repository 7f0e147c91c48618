// Record a live session and replay it (issue 9): an in-process live machine (real clocks, real
// TCP sockets on 127.0.0.1 ephemeral ports) runs the two-hart printing guest with an HMP and a QMP
// monitor, recorded to a file while node:net clients type commands. The replay, in virtual time
// from the file alone, gives the same trace hash, the same HMP and QMP bytes and the same serial
// output; `detvm replay --check/--export` agree. Altered logs are refused (not a log, another
// version, another configuration) or report the divergence at the iteration where the replay's
// trace first leaves the recording's.
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { createMachine, type MachineConfig, type TraceRecord } from '../../index.ts';
import { liveSessionStart } from '../core/replay/live-session.ts';
import { replayMain } from '../../bin/replay.ts';

const dir = mkdtempSync(join(tmpdir(), 'detvm-replay-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const CFG: MachineConfig = {
  kernel: 'guests/bin/demo.elf', smp: 2, trace: 1,
  monitors: ['tcp:127.0.0.1:0,server=on,wait=off'], qmp: ['tcp:127.0.0.1:0,server=on,wait=off'],
};

interface LiveRecording {
  file: string;
  hmp: string;
  qmp: string;
  serial: string;
  traceHash: string;
  records: TraceRecord[];
}

async function recordSession(): Promise<LiveRecording> {
  const file = join(dir, 'session.rr');
  const s = await liveSessionStart({ ...CFG, record: { file } });
  await s.until('the HMP banner', () => s.hmp.text().includes('(qemu) '));
  await s.until('the QMP greeting', () => s.qmp.text().includes('"QMP"'));
  expect(await s.qmpCommand('qmp_capabilities')).toEqual({ return: {}, id: 'c0' });
  await s.until('two ticks', () => s.vm.console.text().includes('tick 2 hart 1'));
  expect(await s.hmpCommand('info status')).toContain('VM status: running');
  expect(await s.hmpCommand('info replay')).toContain(`Recording execution '${file}': instruction count = `);
  expect(await s.qmpCommand('query-status')).toMatchObject({ return: { status: 'running' } });
  expect(await s.qmpCommand('replay-seek', { icount: 5 })).toMatchObject({ error: { desc: 'replay must be enabled to seek' } });
  expect(await s.hmpCommand('stop')).toContain('(qemu) ');
  await s.until('the STOP event', () => s.qmp.text().includes('"STOP"'));
  expect(await s.qmpCommand('cont')).toMatchObject({ return: {} });
  await s.until('more ticks', () => s.vm.console.text().includes('tick 4 hart 1'));
  s.qmp.send('{"execute": "quit"}\n');
  const end = await s.finish();
  expect(end.status).toBe(0);
  return {
    file, hmp: s.hmp.text(), qmp: s.qmp.text(), serial: s.vm.console.text(), traceHash: end.traceHash,
    records: end.records,
  };
}

function replayConfig(log: Uint8Array | string): MachineConfig {
  return { ...CFG, clock: 'live', replay: { log } };
}

function cli(input = ''): { io: Parameters<typeof replayMain>[1]; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  const stdin = new PassThrough();
  stdin.end(input);
  return { io: { out: (s) => void (out += s), err: (s) => void (err += s), input: stdin, prompt: false }, out: () => out, err: () => err };
}

describe('a recorded live session replays exactly', async () => {
  const rec = await recordSession();

  it('the recording is a detvm log of the live run', () => {
    const log = readFileSync(rec.file);
    expect(log.subarray(0, 8).toString('latin1')).toBe('DETVM-RR');
    expect(rec.hmp).toContain('VM status: running');
    expect(rec.qmp).toContain('"event": "SHUTDOWN"');
    expect(rec.serial).toContain('tick 4 hart 1');
  });

  it('replays in virtual time with the same trace hash, monitor bytes and serial output', () => {
    const vm = createMachine(replayConfig(rec.file));
    const r = vm.replay!.run();
    expect(vm.replay!.divergence()).toBeNull();
    expect(r.stop).toBe('end');
    expect(vm.exitStatus()).toBe(0);
    expect(vm.trace.hash()).toBe(rec.traceHash);
    const out = vm.replay!.output();
    expect(out.find((o) => o.name.includes('compat_monitor0'))!.text).toBe(rec.hmp);
    expect(out.find((o) => o.name.includes('compat_monitor1'))!.text).toBe(rec.qmp);
    expect(vm.console.text()).toBe(rec.serial);
  });

  it('replays the same at any trace level: tracing reads no host clock of its own', () => {
    for (const trace of [0, 2] as const) {
      const vm = createMachine({ ...replayConfig(rec.file), trace });
      const r = vm.replay!.run();
      expect(vm.replay!.divergence(), `trace level ${trace}`).toBeNull();
      expect(r.stop).toBe('end');
      const out = vm.replay!.output();
      expect(out.find((o) => o.name.includes('compat_monitor0'))!.text).toBe(rec.hmp);
      expect(out.find((o) => o.name.includes('compat_monitor1'))!.text).toBe(rec.qmp);
      expect(vm.console.text()).toBe(rec.serial);
    }
  });

  it('detvm replay --check and --export agree with the recording', async () => {
    const c = cli();
    expect(await replayMain([rec.file, '--check'], c.io)).toBe(0);
    expect(c.err()).toMatch(/^replayed .* to the end of the recording: \d+ iterations, icount \d+, trace hash [0-9a-f]{16}; it matches the recording\n$/);
    const out = join(dir, 'trace.jsonl');
    expect(await replayMain([rec.file, '--export', 'jsonl', '--out', out], cli().io)).toBe(0);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    expect(lines.length).toBe(rec.records.length);
    expect(JSON.parse(lines[lines.length - 1]!)).toMatchObject({ seq: rec.records.length - 1 });
    const tree = cli();
    expect(await replayMain([rec.file, '--export', 'tree'], tree.io)).toBe(0);
    expect(tree.out()).toContain('- handle_hmp_command');
  });

  it('the stepper steps, seeks, breaks and shows state', async () => {
    const c = cli('next 3\ntree\nbreak 1500\ncontinue\ninfo replay\nseek 100\nstepi 2\nslice\ndelete\nuntil monitor_read\nevents 2\nstatus\nquit\n');
    expect(await replayMain([rec.file], c.io)).toBe(0);
    const o = c.out();
    expect(o).toContain('recorded by detvm 0.1.0 (live mode)');
    expect(o).toContain('- main_loop_wait (iteration=3)');
    expect(o).toMatch(/breakpoint: iteration \d+, icount 1500 \(inside the iteration\)/);
    expect(o).toContain(`Replaying execution '${rec.file}': instruction count = 1500`);
    expect(o).toMatch(/at: iteration \d+, icount 100 \(inside the iteration\)/);
    expect(o).toMatch(/stepped: iteration \d+, icount 102 /);
    expect(o).toMatch(/end of the slice: iteration \d+, icount \d+/);
    expect(o).toMatch(/event: iteration \d+/);
    expect(o).toContain('detvm demo guest: riscv32 virt');
  });

  it('refuses what it cannot replay, saying why', async () => {
    expect(() => createMachine({ ...replayConfig(rec.file), smp: 1 })).toThrow(`${rec.file} was recorded with another configuration (smp: log 2, now 1)`);
    const other = join(dir, 'other.rr');
    writeFileSync(other, Buffer.from(readFileSync(rec.file).toString('latin1').replace('"detvm":"0.1.0"', '"detvm":"0.0.9"'), 'latin1'));
    expect(() => createMachine(replayConfig(other))).toThrow(`${other} was recorded by detvm 0.0.9; this is detvm 0.1.0`);
    const c = cli();
    expect(await replayMain(['guests/bin/demo.elf'], c.io)).toBe(1);
    expect(c.err()).toContain('is not a detvm record/replay log');
  });

  it('reports an altered QMP command at the iteration where the replay leaves the recording', () => {
    const log = readFileSync(rec.file);
    const at = log.indexOf('query-status');
    expect(at).toBeGreaterThan(0);
    log[at + 11] = 'z'.charCodeAt(0);
    const vm = createMachine(replayConfig(new Uint8Array(log)));
    expect(vm.replay!.run().stop).toBe('divergence');
    const mine = vm.trace.records();
    let diff = 0;
    while (diff < mine.length && mine[diff]!.hash === rec.records[diff]!.hash) diff++;
    let iteration = 0;
    for (let j = diff; j >= 0; j--) {
      const r = rec.records[j]!;
      if (r.kind === 'enter' && r.name === 'main_loop_wait') {
        iteration = Number(r.args!['iteration']);
        break;
      }
    }
    expect(vm.replay!.divergence()).toMatch(new RegExp(`^replay diverged at iteration ${iteration}, `));
  });
});
