// Live migration between two detvm PROCESSES over real TCP on 127.0.0.1 (issue 7): A runs the
// demo guest (a tick line every 100 ms of guest time) and is migrated while it runs, at a
// limited bandwidth so it ticks during pre-copy, to B started with -incoming tcp:127.0.0.1:0.
// C is the same guest, unmigrated. B and C are then stopped at the same idle point (after the
// same tick line, every vCPU in WFI); the serial output of A then B is exactly C's, and
// x-detvm-query-state-hash (sections, RAM, instruction count) is the same on B and C. A
// live-mode guest is deterministic: its VIRTUAL clock is icount-driven and only follows real time
// while every vCPU sleeps, so the state at an idle point does not depend on the host's timing.
// Method: `node bin/detvm.js` spawned three times; QMP over unix sockets (wait=on, so each guest
// starts when the test connects); serial on stdout. No sleeps: the test waits on socket and
// pipe events only.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { createMachine } from '../../index.ts';
import { migrationStateHash } from '../../core/migration/index.ts';
import { DEMO_ELF_PATH } from '../core/migration/virt-fixture.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'detvm-mig-proc-'));
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

type Reply = { return?: unknown; error?: { class: string; desc: string } };
type Event = { event: string; data?: Record<string, unknown> };

/** One detvm process: its serial output (stdout), stderr, QMP connection and events. */
interface Vm {
  name: string;
  proc: ChildProcess;
  out: string;
  err: string;
  events: Event[];
  exited: Promise<number | null>;
  /** Resolvers waiting for output or events to change. */
  waiters: Array<() => void>;
  qmp(cmd: string, args?: Record<string, unknown>): Promise<Record<string, unknown>>;
}

function notify(vm: Vm): void {
  const w = vm.waiters;
  vm.waiters = [];
  for (const f of w) f();
}

/** Resolve once `cond()` holds; re-checked on every output, event or exit of `vm`. */
async function until(vm: Vm, cond: () => boolean, what: string): Promise<void> {
  while (!cond()) {
    if (vm.proc.exitCode !== null) throw new Error(`${vm.name} exited (${vm.proc.exitCode}) before ${what}: ${vm.err}`);
    await new Promise<void>((r) => vm.waiters.push(r));
  }
}

async function start(name: string, extra: string[]): Promise<Vm> {
  const sock = join(dir, `${name}.qmp`);
  const proc = spawn(process.execPath, [
    'bin/detvm.js', '-M', 'virt', '-m', '16M', '-display', 'none', '-serial', 'stdio',
    '-kernel', DEMO_ELF_PATH, '-qmp', `unix:${sock},server=on,wait=on`, ...extra,
  ], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(proc);
  const vm: Vm = {
    name, proc, out: '', err: '', events: [], waiters: [],
    exited: new Promise((r) => proc.on('exit', (code) => r(code))),
    qmp: () => Promise.reject(new Error('not connected')),
  };
  proc.stdout!.setEncoding('latin1').on('data', (d: string) => {
    vm.out += d;
    notify(vm);
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => {
    vm.err += d;
    notify(vm);
  });
  proc.on('exit', () => notify(vm));
  // wait=on: detvm reports the listener, then waits for the monitor's client before starting.
  await until(vm, () => vm.err.includes('QEMU waiting for connection on: '), 'its QMP listener');
  const s: Socket = connect(sock);
  const pending: Array<(r: Reply) => void> = [];
  let buf = '';
  s.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const msg = JSON.parse(buf.slice(0, i)) as Reply & Partial<Event> & { QMP?: unknown };
      buf = buf.slice(i + 1);
      if (msg.event !== undefined) {
        vm.events.push({ event: msg.event, ...(msg.data ? { data: msg.data } : {}) });
        notify(vm);
      } else if (msg.QMP === undefined) {
        pending.shift()?.(msg);
      }
    }
  });
  await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
  vm.qmp = (cmd, args) => new Promise((resolve, reject) => {
    pending.push((r) => (r.error ? reject(new Error(`${name} ${cmd}: ${r.error.desc}`)) : resolve(r.return as Record<string, unknown>)));
    s.write(JSON.stringify({ execute: cmd, ...(args ? { arguments: args } : {}) }) + '\n');
  });
  await vm.qmp('qmp_capabilities');
  return vm;
}

/** Numbers of the `tick N hart 0` lines printed so far. */
function ticks(text: string): number[] {
  return [...text.matchAll(/tick (\d+) hart 0\r?\n/g)].map((m) => Number(m[1]));
}

const lastTick = (text: string): number => ticks(text).at(-1) ?? 0;

interface Stopped {
  tick: number;
  hash: string;
  icount: number;
}

/**
 * Stop `vm` right after it printed tick `n` and went back to WFI. If the stop landed elsewhere
 * (mid-handler, or after a later tick on a loaded host), let it run to the next tick and stop
 * again; every idle point after a tick line is a deterministic state of the guest.
 */
async function stopAtIdleTick(vm: Vm, n: number): Promise<Stopped> {
  for (let want = n, tries = 0; ; tries++) {
    if (tries > 20) throw new Error(`${vm.name}: no idle stop after tick ${n}`);
    await until(vm, () => lastTick(vm.out) >= want, `tick ${want}`);
    await vm.qmp('stop');
    const h = await vm.qmp('x-detvm-query-state-hash');
    const tick = lastTick(vm.out);
    if (h['idle'] === true && vm.out.endsWith('\n')) {
      return { tick, hash: h['hash'] as string, icount: h['icount'] as number };
    }
    await vm.qmp('cont');
    want = tick + 1;
  }
}

describe('live migration between two detvm processes over TCP', () => {
  it('a ticking guest moves from A to B while it runs; A+B output and the final state equal an unmigrated run', async () => {
    const b = await start('b', ['-incoming', 'tcp:127.0.0.1:0']);
    const info = await b.qmp('query-migrate');
    const addr = (info['socket-address'] as Array<{ host: string; port: string }>)[0]!;
    expect(addr.host).toBe('127.0.0.1');
    expect(Number(addr.port)).toBeGreaterThan(0);
    expect(await b.qmp('query-status')).toEqual({ status: 'inmigrate', singlestep: false, running: false });
    const [a, c] = await Promise.all([start('a', []), start('c', [])]);

    await a.qmp('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    // 32 KiB/s: about 1.4 s of pre-copy for 16 MiB of mostly zero pages, so the guest ticks and
    // dirties its stack and counters while its RAM is sent.
    await a.qmp('migrate-set-parameters', { 'max-bandwidth': 32768 });
    await until(a, () => lastTick(a.out) >= 3, 'tick 3');
    const ticksAtMigrate = lastTick(a.out);
    expect(await a.qmp('migrate', { uri: `tcp:127.0.0.1:${addr.port}` })).toEqual({});
    const done = (): Event | undefined => a.events.find((e) => e.event === 'MIGRATION'
      && (e.data?.['status'] === 'completed' || e.data?.['status'] === 'failed'));
    await until(a, () => done() !== undefined, 'the end of the migration');
    expect(done()!.data).toEqual({ status: 'completed' });

    // QEMU's status flow and events on the source; pre-copy ran while the guest ticked.
    const evA = a.events.map((e) => (e.data ? `${e.event} ${JSON.stringify(e.data)}` : e.event));
    expect(evA.slice(0, 3)).toEqual(['MIGRATION {"status":"setup"}', 'MIGRATION_PASS {"pass":1}',
      'MIGRATION {"status":"active"}']);
    expect(evA.at(-1)).toBe('MIGRATION {"status":"completed"}');
    expect(evA).toContain('STOP');
    const passes = evA.filter((e) => e.startsWith('MIGRATION_PASS')).length;
    expect(passes).toBeGreaterThanOrEqual(2);
    expect(lastTick(a.out)).toBeGreaterThan(ticksAtMigrate + 2);
    expect(await a.qmp('query-status')).toEqual({ status: 'postmigrate', singlestep: false, running: false });
    const qa = await a.qmp('query-migrate');
    expect(qa['status']).toBe('completed');
    expect((qa['ram'] as Record<string, number>)['dirty-sync-count']).toBe(passes);

    // B runs on from where A stopped.
    await until(b, () => b.events.some((e) => e.event === 'RESUME'), 'RESUME');
    expect((await b.qmp('query-migrate'))['status']).toBe('completed');
    const lastOnA = lastTick(a.out);
    const sb0 = await stopAtIdleTick(b, lastOnA + 3);
    let sb = sb0;
    let sc = await stopAtIdleTick(c, sb.tick);
    // On a loaded host one of them may have stopped a tick later: bring the other up to it.
    for (let i = 0; sb.tick !== sc.tick; i++) {
      if (i > 10) throw new Error(`B (tick ${sb.tick}) and C (tick ${sc.tick}) do not meet`);
      if (sb.tick < sc.tick) {
        await b.qmp('cont');
        sb = await stopAtIdleTick(b, sc.tick);
      } else {
        await c.qmp('cont');
        sc = await stopAtIdleTick(c, sb.tick);
      }
    }
    expect(await b.qmp('query-status')).toEqual({ status: 'paused', singlestep: false, running: false });
    // QEMU may exit before its reply to quit reaches the client: wait for the exit instead.
    for (const vm of [a, b, c]) void vm.qmp('quit').catch(() => undefined);
    expect(await Promise.all([a.exited, b.exited, c.exited])).toEqual([0, 0, 0]);

    expect(ticks(b.out)[0]).toBe(lastOnA + 1);
    expect(a.out + b.out).toBe(c.out);
    expect(sb.icount).toBe(sc.icount);
    expect(sb.hash).toBe(sc.hash);

    // The same guest in virtual mode, in this process, reaches the same state at that tick.
    const v = createMachine({ kernel: DEMO_ELF_PATH, memory: '16M' });
    v.runUntil(() => lastTick(v.console.text()) >= sc.tick && v.kernel.cpus[0]!.halted);
    expect(v.console.text().replace(/\r?\n/g, '\n')).toBe(c.out.replace(/\r?\n/g, '\n'));
    const hv = migrationStateHash(v.kernel);
    expect(hv.icount).toBe(sc.icount);
    expect(hv.hash).toBe(sc.hash);
    v.close();
  }, 120_000);

  it('exec: URIs run commands only with -migrate-exec on: out to `cat > FILE`, back in from `cat FILE`', async () => {
    const file = join(dir, 'exec.mig');
    const off = spawnSync(process.execPath, ['bin/detvm.js', '-M', 'virt', '-display', 'none', '-kernel', DEMO_ELF_PATH,
      '-incoming', `exec:cat ${file}`], { cwd: ROOT, encoding: 'utf8' });
    expect(off.status).toBe(1);
    expect(off.stderr).toBe(`detvm: -incoming exec:cat ${file}: exec: migration is disabled (the host has not enabled it)\n`);

    const a = await start('xa', ['-migrate-exec', 'on']);
    await a.qmp('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    await until(a, () => lastTick(a.out) >= 2, 'tick 2');
    expect(await a.qmp('migrate', { uri: `exec:cat > ${file}` })).toEqual({});
    await until(a, () => a.events.some((e) => e.event === 'MIGRATION' && e.data?.['status'] === 'completed'), 'completed');
    expect(await a.qmp('query-status')).toEqual({ status: 'postmigrate', singlestep: false, running: false });
    const lastOnA = lastTick(a.out);
    void a.qmp('quit').catch(() => undefined);
    expect(await a.exited).toBe(0);

    const b = await start('xb', ['-migrate-exec', 'on', '-incoming', `exec:cat ${file}`]);
    await until(b, () => lastTick(b.out) >= lastOnA + 2, `tick ${lastOnA + 2}`);
    expect(ticks(b.out)[0]).toBe(lastOnA + 1);
    expect((await b.qmp('query-migrate'))['status']).toBe('completed');
    void b.qmp('quit').catch(() => undefined);
    expect(await b.exited).toBe(0);
  }, 60_000);
});
