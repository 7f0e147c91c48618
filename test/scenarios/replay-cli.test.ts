// Record and replay through the detvm executable (issue 9): `node bin/detvm.js` is spawned with
// `-icount shift=0,rr=record,rrfile=F`, HMP and QMP on TCP (wait=on servers, so the ports the
// child bound are read from its "waiting for connection" lines), the printing two-hart guest on
// stdio, and a trace file. node:net clients talk to both monitors, one HMP client disconnects and
// another connects, then SIGTERM ends the run (SIGINT a second, smaller one). The replays, as
// spawned processes too, give the same serial output, the same monitor bytes per connection, the
// same trace file and the same end; the log holds the connections, hang-ups and the signal at
// their positions. The interactive stepper is driven through stdin of `detvm replay FILE`, and
// the exports (JSON lines, call tree, Chrome/Perfetto JSON) are checked against the trace.
// Waits are on child-process and socket events only; each has a guard timeout.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type LogEvent, logCursorCreate, logEventRead, replayHeaderDecode, replayLogScan } from '../../core/replay/index.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const DETVM = join(ROOT, 'bin/detvm.js');
const dir = mkdtempSync(join(tmpdir(), 'detvm-replay-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const GUARD_MS = 30_000;

/** A spawned detvm: its output so far, and waits on it. */
interface Child {
  p: ChildProcess;
  out(): string;
  err(): string;
  /** Resolve once `pred` holds (checked on every output chunk). */
  until(what: string, pred: () => boolean): Promise<void>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function detvm(args: string[], stdin?: string): Child {
  const p = spawn(process.execPath, [DETVM, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const waiters: Array<{ pred: () => boolean; resolve: () => void }> = [];
  const check = (): void => {
    for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.pred()) waiters.splice(i, 1)[0]!.resolve();
  };
  p.stdout!.on('data', (d: Buffer) => { out.push(d); check(); });
  p.stderr!.on('data', (d: Buffer) => { err.push(d); check(); });
  if (stdin !== undefined) p.stdin!.end(stdin);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => p.on('close', (code, signal) => r({ code, signal })));
  const c: Child = {
    p,
    out: () => Buffer.concat(out).toString('latin1'),
    err: () => Buffer.concat(err).toString('latin1'),
    until: (what, pred) => new Promise((res, rej) => {
      if (pred()) return res();
      const guard = setTimeout(() => rej(new Error(`detvm ${args.join(' ')}: ${what} did not happen\nstderr: ${c.err()}`)), GUARD_MS);
      waiters.push({ pred, resolve: () => { clearTimeout(guard); res(); } });
    }),
    exit,
  };
  return c;
}

/** A TCP client of a monitor: everything it received, and waits on it. */
interface Client {
  s: net.Socket;
  text(): string;
  until(what: string, pred: (t: string) => boolean): Promise<void>;
  closed: Promise<void>;
}

function connect(port: number): Promise<Client> {
  return new Promise((res, rej) => {
    const chunks: Buffer[] = [];
    const waiters: Array<{ pred: (t: string) => boolean; resolve: () => void }> = [];
    const text = (): string => Buffer.concat(chunks).toString('latin1');
    let closedResolve = (): void => {};
    const closed = new Promise<void>((r) => (closedResolve = r));
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.setNoDelay(true);
      res({
        s, text, closed,
        until: (what, pred) => new Promise((ok, bad) => {
          if (pred(text())) return ok();
          const guard = setTimeout(() => bad(new Error(`client of port ${port}: ${what} did not happen; got ${JSON.stringify(text())}`)), GUARD_MS);
          waiters.push({ pred, resolve: () => { clearTimeout(guard); ok(); } });
        }),
      });
    });
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.pred(text())) waiters.splice(i, 1)[0]!.resolve();
    });
    s.on('close', () => closedResolve());
    s.on('error', rej);
  });
}

/** The port of the n-th (from 0) "QEMU waiting for connection on: ...:PORT,server=on" line. */
function waitingPort(c: Child, n: number): number {
  const all = [...c.err().matchAll(/waiting for connection on: disconnected:tcp:127\.0\.0\.1:(\d+),server=on/g)];
  return Number(all[n]![1]);
}

function waitingLines(c: Child): number {
  return [...c.err().matchAll(/waiting for connection on:/g)].length;
}

function logEvents(file: string): LogEvent[] {
  const bytes = readFileSync(file);
  const { eventsAt } = replayHeaderDecode(bytes, file);
  const cur = logCursorCreate(eventsAt);
  const out: LogEvent[] = [];
  for (let e = logEventRead(bytes, cur); e !== null; e = logEventRead(bytes, cur)) out.push(e);
  return out;
}

const GUEST = ['-M', 'virt', '-smp', '2', '-kernel', 'guests/bin/demo.elf', '-display', 'none', '-serial', 'stdio'];
const MONITORS = ['-monitor', 'tcp:127.0.0.1:0,server=on,wait=on', '-qmp', 'tcp:127.0.0.1:0,server=on,wait=on'];

interface Recording {
  file: string;
  trace: string;
  serial: string;
  stderr: string;
  hmp: string[];
  qmp: string;
  code: number | null;
}

/** Record a session through the executable, typing HMP and QMP commands, ended by SIGTERM. */
async function recordSession(): Promise<Recording> {
  const file = join(dir, 'session.rr');
  const trace = join(dir, 'record.jsonl');
  const c = detvm([...GUEST, ...MONITORS, '-icount', `shift=0,rr=record,rrfile=${file}`, '-dtrace-file', trace]);
  // wait=on: the HMP server waits for its client, then the QMP server for its own.
  await c.until('the HMP server', () => waitingLines(c) >= 1);
  const hmpPort = waitingPort(c, 0);
  const hmp1 = await connect(hmpPort);
  await c.until('the QMP server', () => waitingLines(c) >= 2);
  const qmp = await connect(waitingPort(c, 1));
  await hmp1.until('the HMP banner', (t) => t.includes('(qemu) '));
  await qmp.until('the QMP greeting', (t) => t.includes('"QMP"'));
  qmp.s.write('{"execute":"qmp_capabilities","id":1}\n');
  await qmp.until('the capabilities reply', (t) => t.includes('"id": 1'));
  await c.until('two ticks', () => c.out().includes('tick 2 hart 1'));
  hmp1.s.write('info status\r');
  await hmp1.until('info status', (t) => t.includes('VM status: running\r\n(qemu) '));
  qmp.s.write('{"execute":"query-replay","id":2}\n');
  await qmp.until('query-replay', (t) => t.includes('"id": 2'));
  hmp1.s.end();
  await hmp1.closed;
  // A second HMP client on the same server once the first one has gone.
  const hmp2 = await connect(hmpPort);
  await hmp2.until('the second HMP banner', (t) => t.includes('(qemu) '));
  hmp2.s.write('info replay\r');
  await hmp2.until('info replay', (t) => t.includes('instruction count = ') && t.endsWith('(qemu) '));
  qmp.s.write('{"execute":"stop","id":3}\n');
  await qmp.until('the STOP event and reply', (t) => t.includes('"STOP"') && t.includes('"id": 3'));
  qmp.s.write('{"execute":"cont","id":4}\n');
  await qmp.until('the reply to cont', (t) => t.includes('"id": 4'));
  const ticks = c.out().length;
  await c.until('more ticks', () => c.out().length > ticks && c.out().includes('tick 4 hart 1'));
  c.p.kill('SIGTERM');
  const end = await c.exit;
  await Promise.all([hmp2.closed, qmp.closed]);
  return {
    file, trace, serial: c.out(), stderr: c.err(), hmp: [hmp1.text(), hmp2.text()], qmp: qmp.text(), code: end.code,
  };
}

describe('record and replay with the detvm executable', async () => {
  const rec = await recordSession();

  it('records a live run with HMP and QMP on TCP and ends on SIGTERM as QEMU does', () => {
    expect(rec.code).toBe(0);
    expect(rec.stderr).toContain('detvm: terminating on signal 15\n');
    expect(rec.serial).toContain('detvm demo guest: riscv32 virt');
    expect(rec.hmp[0]).toContain('VM status: running');
    expect(rec.hmp[1]).toContain(`Recording execution '${rec.file}': instruction count = `);
    const info = rec.qmp.split('\n').find((l) => l.includes('"id": 2'))!;
    expect(JSON.parse(info)).toMatchObject({ return: { mode: 'record', filename: rec.file, icount: expect.any(Number) } });
    expect(rec.qmp).toContain('"reason": "host-signal"');
  });

  it('logs connections opened and closed, the monitor bytes and the signal at their positions', () => {
    const events = logEvents(rec.file);
    const inputs = events.filter((e): e is Extract<LogEvent, { k: 'arrive' }> => e.k === 'arrive').map((e) => e.input);
    expect(inputs.filter((i) => i.kind === 'accept').length).toBe(3); // HMP, QMP, HMP again
    expect(inputs.filter((i) => i.kind === 'hup').length).toBeGreaterThanOrEqual(1); // the first HMP client left
    const typed = Buffer.concat(inputs.flatMap((i) => (i.kind === 'data' ? [Buffer.from(i.data)] : []))).toString('latin1');
    expect(typed).toContain('info status\r');
    expect(typed).toContain('{"execute":"query-replay","id":2}');
    const sig = events.find((e) => e.k === 'signal');
    expect(sig).toMatchObject({ k: 'signal', signal: 15, pid: 0 });
    const end = events[events.length - 1]!;
    expect(end).toMatchObject({ k: 'end', exit: 0 });
    // The signal is applied before the iteration that ends the run.
    expect(sig!.iteration).toBeLessThanOrEqual(end.iteration);
  });

  it('detvm replay --check reproduces the monitor bytes of every connection and the serial output', async () => {
    const outs = join(dir, 'outputs');
    const c = detvm(['replay', rec.file, '--check', '--outputs', outs]);
    expect((await c.exit).code).toBe(0);
    expect(c.err()).toMatch(/replayed .* to the end of the recording: \d+ iterations, icount \d+, trace hash [0-9a-f]{16}; it matches the recording\n$/);
    const files = readdirSync(outs).sort();
    const read = (f: string): string => readFileSync(join(outs, f), 'latin1');
    const hmp = files.filter((f) => f.includes('compat_monitor0'));
    expect(hmp.map(read)).toEqual(rec.hmp);
    expect(read(files.find((f) => f.includes('compat_monitor1'))!)).toBe(rec.qmp);
    expect(read('stdio-out')).toBe(rec.serial);
  });

  it('-icount rr=replay gives the same serial output, trace file, messages and exit status', async () => {
    const trace = join(dir, 'replay.jsonl');
    const c = detvm([...GUEST, ...MONITORS, '-icount', `shift=0,rr=replay,rrfile=${rec.file}`, '-dtrace-file', trace]);
    const end = await c.exit;
    expect(end.code).toBe(0);
    expect(c.out()).toBe(rec.serial);
    expect(c.err()).toBe(rec.stderr);
    expect(readFileSync(trace, 'utf8')).toBe(readFileSync(rec.trace, 'utf8'));
  });

  it('refuses the log with another configuration, saying which option differs', async () => {
    const c = detvm([...GUEST.map((a) => (a === '2' ? '1' : a)), ...MONITORS, '-icount', `shift=0,rr=replay,rrfile=${rec.file}`]);
    expect((await c.exit).code).toBe(1);
    expect(c.err()).toContain(`${rec.file} was recorded with another configuration (smp: log 2, now 1)`);
  });

  it('reports the first divergence of an altered log with both sides', async () => {
    const log = readFileSync(rec.file);
    const at = log.indexOf('info status');
    log[at + 5] = 'z'.charCodeAt(0); // "info ztatus"
    const bad = join(dir, 'altered.rr');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(bad, log);
    const c = detvm(['replay', bad, '--check']);
    expect((await c.exit).code).toBe(1);
    expect(c.err()).toMatch(/^replay diverged at iteration \d+, icount \d+: /m);
    expect(c.err()).toContain('log side:\n  last input: ');
    expect(c.err()).toMatch(/ {2}last input: host input data fd \d+ \(\d+ bytes\) "[^\n]*ztatus/);
    expect(c.err()).toContain('replay side:');
  });

  it('exports the replay trace as JSON lines, a call tree and Chrome/Perfetto JSON', async () => {
    const recorded = readFileSync(rec.trace, 'utf8');
    const jsonl = detvm(['replay', rec.file, '--export', 'jsonl']);
    expect((await jsonl.exit).code).toBe(0);
    // The export stops at the end of the log; the recorded file also has qemu_cleanup's records.
    expect(jsonl.out().length).toBeGreaterThan(1000);
    expect(recorded.startsWith(jsonl.out())).toBe(true);
    const lines = jsonl.out().trimEnd().split('\n').map((l) => JSON.parse(l) as { seq: number; kind: string; name: string });
    const tree = detvm(['replay', rec.file, '--export', 'tree']);
    expect((await tree.exit).code).toBe(0);
    expect(tree.out()).toContain('- main_loop_wait (iteration=1)');
    expect(tree.out()).toContain('- handle_hmp_command');
    expect(tree.out().split('\n').filter((l) => /^\s*- /.test(l)).length).toBe(lines.filter((r) => r.kind === 'enter').length);
    const chromeFile = join(dir, 'trace.json');
    const chrome = detvm(['replay', rec.file, '--export', 'chrome', '--out', chromeFile]);
    expect((await chrome.exit).code).toBe(0);
    const ev = (JSON.parse(readFileSync(chromeFile, 'utf8')) as { traceEvents: Array<{ name: string; ph: string; args: { seq: number } }> }).traceEvents;
    expect(ev.length).toBe(lines.length);
    expect(ev.map((e) => e.ph).join('')).toBe(lines.map((r) => (r.kind === 'enter' ? 'B' : r.kind === 'exit' ? 'E' : 'i')).join(''));
    expect(ev[ev.length - 1]!.args.seq).toBe(lines[lines.length - 1]!.seq);
  });

  it('the interactive stepper reads commands from stdin and answers deterministically', async () => {
    const bytes = readFileSync(rec.file);
    const last = replayLogScan(bytes, replayHeaderDecode(bytes, rec.file).eventsAt).end!.icount;
    const b1 = Math.floor(last * 0.5);
    const b2 = Math.floor(last * 0.8);
    const u = Math.floor(last * 0.9);
    const script = [
      'next 2', 'tree', 'events 2', `break ${b1}`, `break ${b2}`, 'breaks', 'continue', 'info replay', 'seek 40',
      'stepi 3', 'slice', 'delete', `until icount ${u}`, 'hmp info status', 'seek 10', 'where', 'until monitor_read',
      'continue', 'bogus', 'quit',
    ].join('\n') + '\n';
    const runs = await Promise.all([0, 1].map(async () => {
      const c = detvm(['replay', rec.file], script);
      const end = await c.exit;
      return { code: end.code, out: c.out(), err: c.err() };
    }));
    expect(runs[0]!.code).toBe(0);
    expect(runs[1]!.out).toBe(runs[0]!.out);
    const o = runs[0]!.out;
    expect(o).toMatch(/^detvm replay .*session\.rr: recorded by detvm \d+\.\d+\.\d+ \(live mode\), \d+ iterations, icount \d+\. help lists the commands\.\n/);
    expect(o).toContain('- main_loop_wait (iteration=2)');
    expect(o).toContain(`breakpoint at icount ${b1}\nbreakpoint at icount ${b2}\n${b1} ${b2}\n`);
    expect(o).toMatch(new RegExp(`breakpoint: iteration \\d+, icount ${b1} \\(inside the iteration\\)`));
    expect(o).toContain(`Replaying execution '${rec.file}': instruction count = ${b1}`);
    expect(o).toMatch(/at: iteration \d+, icount 40 \(inside the iteration\)/);
    expect(o).toMatch(/stepped: iteration \d+, icount 43 /);
    expect(o).toMatch(/end of the slice: iteration \d+, icount \d+/);
    expect(o).toMatch(new RegExp(`icount: iteration \\d+, icount ${u} \\(inside the iteration\\)`));
    expect(o).toMatch(/event: iteration \d+/);
    expect(o).toContain('VM status: running');
    expect(o).toMatch(/at: iteration \d+, icount 10 \(inside the iteration\)[^\n]*\nlog: \d+ iterations, icount \d+; snapshots \d+ \([\d.]+ MiB\); breakpoints none\n/);
    expect(o).toMatch(/\nend: iteration \d+, icount \d+; next log event: end of the recording\n/);
    expect(o).toContain("unknown command 'bogus' (help lists them)");
    // The guest's console output is shown once, as the replay first runs it.
    expect(o.split('detvm demo guest: riscv32 virt').length).toBe(2);
  });
});

describe('a recording ended by SIGINT', () => {
  it('replays to the same end', async () => {
    const file = join(dir, 'sigint.rr');
    const c = detvm([...GUEST, '-icount', `shift=0,rr=record,rrfile=${file}`]);
    await c.until('a tick', () => c.out().includes('tick 1 hart 1'));
    c.p.kill('SIGINT');
    expect((await c.exit).code).toBe(0);
    expect(c.err()).toContain('detvm: terminating on signal 2\n');
    expect(logEvents(file).find((e) => e.k === 'signal')).toMatchObject({ signal: 2 });
    const r = detvm([...GUEST, '-icount', `shift=0,rr=replay,rrfile=${file}`]);
    expect((await r.exit).code).toBe(0);
    expect(r.out()).toBe(c.out());
    expect(r.err()).toBe(c.err());
  });
});
