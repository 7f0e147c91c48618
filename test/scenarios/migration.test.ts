// Live migration between two machines in one process (virtual mode): the demo guest keeps
// ticking on the source while its RAM goes over an in-memory fd: pipe at a limited bandwidth,
// pages it dirties are sent again, then stop-and-copy; the destination starts where the source
// stopped. The serial output of source then destination is exactly the output of an unmigrated
// run, and the final state fingerprints match. Also: QEMU's statuses, events, error texts, cancel,
// failures on both sides (the destination stays exactly as it was), HMP and QMP views.
// Method: createMachine machines stepped alternately; exact strings and event lists.
import { describe, expect, it } from 'vitest';
import { createMachine, type DetvmMachine, type MachineEvent } from '../../index.ts';
import { migrationPipeCreate } from '../../core/migration/index.ts';
import { hostInputAt, vfdOpen } from '../../core/loop/index.ts';
import { addressSpaceRead, addressSpaceWrite, RAM_BASE } from '../../core/memory/index.ts';
import { memoryPeerConnect, memoryPeerSend, memoryPeerText } from '../../chardev/index.ts';
import { DEMO_ELF_PATH, machineStateHash } from '../core/migration/virt-fixture.ts';

function vm(extra: Parameters<typeof createMachine>[0] = {}): DetvmMachine {
  return createMachine({ kernel: DEMO_ELF_PATH, memory: '16M', ...extra });
}

function events(m: DetvmMachine): string[] {
  const out: string[] = [];
  m.events.on('event', (e: MachineEvent) => out.push(e.data ? `${e.event} ${JSON.stringify(e.data)}` : e.event));
  return out;
}

/** Step source and destination in turn until `done` (bounded). */
function drive(a: DetvmMachine, b: DetvmMachine, done: () => boolean, max = 400_000): void {
  for (let i = 0; !done(); i++) {
    if (i >= max) throw new Error(`migration did not finish in ${max} steps`);
    a.step();
    b.step();
  }
}

function status(m: DetvmMachine): string | undefined {
  return m.kernel.migration.out?.status;
}

/** The number of the last `tick N hart 0` line the guest printed. */
function lastTick(m: DetvmMachine): number {
  const all = [...m.console.text().matchAll(/tick (\d+) hart 0/g)];
  return Number(all.at(-1)?.[1] ?? 0);
}

/** Run until the guest printed `tick N hart 0` and went back to sleep. */
function untilTick(m: DetvmMachine, n: number): void {
  m.runUntil(() => m.console.text().includes(`tick ${n} hart 0`) && m.kernel.cpus[0]!.halted);
}

function pair(bandwidth: string | null, destExtra: Parameters<typeof createMachine>[0] = {}) {
  const a = vm();
  const b = vm({ incoming: 'defer', ...destExtra });
  migrationPipeCreate(a.kernel, b.kernel, 'mig0');
  expect(b.qmp('migrate-incoming', { uri: 'fd:mig0' })).toEqual({});
  a.qmp('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
  if (bandwidth !== null) expect(a.hmp(`migrate_set_parameter max-bandwidth ${bandwidth}`)).toBe('');
  return { a, b };
}

/**
 * Like migrationPipeCreate, but holding at most `capacity` bytes the destination has not read:
 * the source's descriptor turns unwritable when it is full, and writable again `refillNs` of
 * the source's time after the destination read (a socket's buffers and a link's speed).
 */
function boundedPipe(a: DetvmMachine, b: DetvmMachine, name: string, capacity: number, refillNs: number): void {
  const inFd = vfdOpen(b.kernel.fdt, `bounded-in:${name}`, 'stream', () => -1);
  let inFlight = 0;
  let lastInbound = 0;
  const outFd = vfdOpen(a.kernel.fdt, `bounded-out:${name}`, 'stream', (d) => {
    if (inFd.closed) return -1;
    const n = Math.min(d.length, capacity - inFlight);
    if (n > 0) {
      inFlight += n;
      hostInputAt(b.kernel.fdt, b.kernel.clocks.simNs, { kind: 'data', fd: inFd.id, data: d.slice(0, n) });
    }
    if (inFlight >= capacity) outFd.writable = false;
    return n;
  });
  inFd.onInboundChange = (f) => {
    const delta = f.inboundBytes - lastInbound;
    lastInbound = f.inboundBytes;
    if (delta >= 0) return; // bytes arrived
    inFlight += delta; // read by the destination
    if (!outFd.writable && inFlight < capacity) {
      hostInputAt(a.kernel.fdt, a.kernel.clocks.simNs + refillNs, { kind: 'writable', fd: outFd.id, writable: true });
    }
  };
  a.kernel.migration.fds.set(name, outFd);
  b.kernel.migration.fds.set(name, inFd);
}

describe('live migration in one process (virtual mode)', () => {
  it('migrates a ticking guest while it runs; output and state continue exactly', () => {
    const ref = vm();
    const { a, b } = pair('16K');
    const evA = events(a);
    const evB = events(b);
    a.runFor(150_000_000);
    const ticksAtStart = a.console.text().split('tick').length;
    expect(a.qmp('migrate', { uri: 'fd:mig0' })).toEqual({});
    drive(a, b, () => status(a) === 'completed' && b.kernel.runstate.current === 'running');
    // The guest ticked during the migration and pages it wrote went again.
    expect(a.console.text().split('tick').length).toBeGreaterThan(ticksAtStart + 2);
    const c = a.kernel.migration.rs.counters;
    expect(c.dirtySyncCount).toBeGreaterThan(2);
    expect(c.normal + c.duplicate).toBeGreaterThan(a.kernel.migration.rs.blocks
      .reduce((n, blk) => n + blk.usedLength / 4096, 0));
    expect(a.hmp('info status')).toBe('VM status: paused (postmigrate)\r\n');
    expect(evA.slice(0, 3)).toEqual(['MIGRATION {"status":"setup"}', 'MIGRATION_PASS {"pass":1}',
      'MIGRATION {"status":"active"}']);
    expect(evA.slice(-3)).toEqual(['STOP', `MIGRATION_PASS {"pass":${c.dirtySyncCount}}`,
      'MIGRATION {"status":"completed"}']);
    expect(evA.slice(3, -3).every((e) => e.startsWith('MIGRATION_PASS'))).toBe(true);
    // The destination raised MIGRATION setup at migrate-incoming (before this listener); it has
    // no events capability, so it reports nothing else but the start of its guest.
    expect(evB).toEqual(['RESUME']);
    const lastOnA = lastTick(a);
    untilTick(b, lastOnA + 3);
    untilTick(ref, lastOnA + 3);
    expect(a.console.text() + b.console.text()).toBe(ref.console.text());
    expect(machineStateHash(b.kernel)).toBe(machineStateHash(ref.kernel));
  });

  it('migrates at unlimited bandwidth in one go; info migrate shows QEMU 7.2\'s lines', () => {
    const ref = vm();
    const { a, b } = pair('0');
    a.runFor(250_000_000);
    a.qmp('migrate', { uri: 'fd:mig0' });
    drive(a, b, () => status(a) === 'completed' && b.kernel.runstate.current === 'running');
    const info = a.hmp('info migrate');
    expect(info).toMatch(new RegExp('^globals:\r\nstore-global-state: on\r\nonly-migratable: off\r\n'
      + 'send-configuration: on\r\nsend-section-footer: on\r\ndecompress-error-check: on\r\n'
      + 'clear-bitmap-shift: 18\r\nMigration status: completed\r\ntotal time: \\d+ ms\r\n'
      + 'downtime: \\d+ ms\r\nsetup: \\d+ ms\r\ntransferred ram: \\d+ kbytes\r\n'
      + 'throughput: \\d+\\.\\d\\d mbps\r\nremaining ram: 0 kbytes\r\ntotal ram: 16444 kbytes\r\n'
      + 'duplicate: \\d+ pages\r\nskipped: 0 pages\r\nnormal: \\d+ pages\r\n'
      + 'normal bytes: \\d+ kbytes\r\ndirty sync count: 2\r\npage size: 4 kbytes\r\n'
      + 'multifd bytes: 0 kbytes\r\npages-per-second: \\d+\r\n'));
    const q = a.qmp('query-migrate') as Record<string, unknown>;
    expect(Object.keys(q).sort()).toEqual(['downtime', 'ram', 'setup-time', 'status', 'total-time']);
    expect(b.qmp('query-migrate')).toEqual({ status: 'completed' });
    untilTick(b, 6);
    untilTick(ref, 6);
    expect(a.console.text() + b.console.text()).toBe(ref.console.text());
    expect(machineStateHash(b.kernel)).toBe(machineStateHash(ref.kernel));
  });

  it('a paused source arrives paused; a -S destination of a running source stays paused', () => {
    const { a, b } = pair(null);
    a.runFor(120_000_000);
    a.qmp('stop');
    a.qmp('migrate', { uri: 'fd:mig0' });
    drive(a, b, () => status(a) === 'completed' && b.kernel.runstate.current !== 'inmigrate');
    expect([a.hmp('info status'), b.hmp('info status')])
      .toEqual(['VM status: paused (postmigrate)\r\n', 'VM status: paused\r\n']);
    const p = pair(null, { startPaused: true });
    p.a.runFor(120_000_000);
    p.a.qmp('migrate', { uri: 'fd:mig0' });
    drive(p.a, p.b, () => status(p.a) === 'completed' && p.b.kernel.runstate.current !== 'inmigrate');
    expect(p.b.hmp('info status')).toBe('VM status: paused\r\n');
    expect(p.b.qmp('cont')).toEqual({});
    expect(p.b.hmp('info status')).toBe('VM status: running\r\n');
  });

  it('cancels: cancelling, then cancelled; the source runs on; the destination is unchanged', () => {
    const { a, b } = pair('16K');
    const evA = events(a);
    const reports: string[] = b.reports as string[];
    a.runFor(150_000_000);
    const before = machineStateHash(b.kernel);
    a.qmp('migrate', { uri: 'fd:mig0' });
    drive(a, b, () => (a.kernel.migration.rs.counters.normal > 2));
    expect(a.qmp('migrate_cancel')).toEqual({});
    expect(status(a)).toBe('cancelling');
    drive(a, b, () => status(a) === 'cancelled' && b.kernel.migration.incoming.status === 'failed');
    expect(evA.filter((e) => e.startsWith('MIGRATION ')).slice(-2))
      .toEqual(['MIGRATION {"status":"cancelling"}', 'MIGRATION {"status":"cancelled"}']);
    expect(a.hmp('info status')).toBe('VM status: running\r\n');
    expect(a.qmp('query-migrate')).toEqual({ status: 'cancelled' });
    expect(machineStateHash(b.kernel)).toBe(before);
    expect(b.hmp('info status')).toBe('VM status: paused (inmigrate)\r\n');
    expect(reports.at(-1)).toBe('detvm: load of migration failed: Input/output error');
    // The destination can take another migration (QEMU's would have exited).
    migrationPipeCreate(a.kernel, b.kernel, 'mig1');
    expect(b.qmp('migrate-incoming', { uri: 'fd:mig1' })).toEqual({});
    a.qmp('migrate', { uri: 'fd:mig1' });
    drive(a, b, () => status(a) === 'completed' && b.kernel.runstate.current === 'running');
  });

  it('a failed load leaves the destination RAM as it was, though pages were loaded in place', () => {
    const { a, b } = pair('64K');
    a.runFor(150_000_000);
    // Pages the destination does not hold: 4 KiB of a pattern at 64 KiB into RAM, then 256 KiB
    // more so that the stream is still going when the pattern has arrived.
    const at = RAM_BASE + 0x10000;
    const pattern = Uint8Array.from({ length: 4096 }, (_, i) => (i * 37 + 11) & 0xff);
    addressSpaceWrite(a.kernel.as, at, pattern);
    addressSpaceWrite(a.kernel.as, at + 4096, new Uint8Array(256 * 1024).fill(0x5a));
    const before = machineStateHash(b.kernel);
    const seen = new Uint8Array(4096);
    const peek = (): Uint8Array => (addressSpaceRead(b.kernel.as, at, seen), seen);
    a.qmp('migrate', { uri: 'fd:mig0' });
    // The destination writes RAM pages as they arrive (QEMU's way), before the stream ends.
    drive(a, b, () => peek().every((v, i) => v === pattern[i]));
    expect(b.kernel.runstate.current).toBe('inmigrate');
    expect(a.qmp('migrate_cancel')).toEqual({});
    drive(a, b, () => status(a) === 'cancelled' && b.kernel.migration.incoming.status === 'failed');
    expect(peek().every((v) => v === 0)).toBe(true);
    expect(machineStateHash(b.kernel)).toBe(before);
    // The kernel image is back where the reset put it: the retry migrates and the guest runs on.
    migrationPipeCreate(a.kernel, b.kernel, 'mig1');
    expect(b.qmp('migrate-incoming', { uri: 'fd:mig1' })).toEqual({});
    a.qmp('migrate', { uri: 'fd:mig1' });
    drive(a, b, () => status(a) === 'completed' && b.kernel.runstate.current === 'running');
    expect(machineStateHash(b.kernel)).toBe(machineStateHash(a.kernel));
  });

  it('pauses the stop-and-copy while the channel is full, holding the loop off as the BQL does', () => {
    const a = vm();
    const b = vm({ incoming: 'defer' });
    // 256 KiB in flight at most, room again 10 ms after the destination read: about 25 MB/s,
    // so the first 100 ms window measures a bandwidth, and with this downtime limit the
    // migration completes with most of RAM left: the stop-and-copy outruns the pipe.
    boundedPipe(a, b, 'mig0', 256 * 1024, 10_000_000);
    expect(b.qmp('migrate-incoming', { uri: 'fd:mig0' })).toEqual({});
    a.qmp('migrate-set-parameters', { 'downtime-limit': 2_000_000 });
    a.runFor(150_000_000);
    const at = RAM_BASE + 0x100000;
    const data = Uint8Array.from({ length: 6 << 20 }, (_, i) => (i * 2654435761) >>> 24);
    addressSpaceWrite(a.kernel.as, at, data);
    a.qmp('migrate', { uri: 'fd:mig0' });
    let held = 0;
    let refused = '';
    drive(a, b, () => {
      if (a.kernel.loop.exclusive !== null) {
        held++;
        expect(a.kernel.runstate.current).toBe('finish-migrate');
        if (refused === '') {
          try {
            a.hmp('cont');
          } catch (e) {
            refused = (e as Error).message;
          }
        }
      }
      return status(a) === 'completed' && b.kernel.runstate.current === 'running';
    });
    expect(held).toBeGreaterThan(1);
    expect(refused).toMatch(/held by the migration thread/);
    expect(a.hmp('info status')).toBe('VM status: paused (postmigrate)\r\n');
    const got = new Uint8Array(data.length);
    addressSpaceRead(b.kernel.as, at, got);
    expect(Buffer.compare(got, data)).toBe(0);
  });

  it('fails when the destination goes away: Broken pipe, the source resumes', () => {
    const { a, b } = pair('16K');
    a.runFor(150_000_000);
    a.qmp('migrate', { uri: 'fd:mig0' });
    drive(a, b, () => (a.kernel.migration.rs.counters.normal > 2));
    b.close();
    b.kernel.migration.fds.get('mig0')!.onClose?.(b.kernel.migration.fds.get('mig0')!);
    for (let i = 0; i < 100_000 && status(a) !== 'failed'; i++) a.step();
    expect(a.qmp('query-migrate')).toEqual({ status: 'failed', 'error-desc': 'Unable to write to socket: Broken pipe' });
    expect(a.hmp('info status')).toBe('VM status: running\r\n');
    expect(a.reports.at(-1)).toBe('detvm: Unable to write to socket: Broken pipe');
  });
});

describe('migration commands and their errors (QEMU 7.2 texts)', () => {
  it('reports nothing before any migration, and refuses what QEMU refuses', () => {
    const a = vm();
    expect(a.qmp('query-migrate')).toEqual({});
    expect(a.hmp('info migrate')).toBe('globals:\r\nstore-global-state: on\r\nonly-migratable: off\r\n'
      + 'send-configuration: on\r\nsend-section-footer: on\r\ndecompress-error-check: on\r\n'
      + 'clear-bitmap-shift: 18\r\n');
    expect(() => a.qmp('migrate', { uri: 'foo:bar' })).toThrow("Parameter 'uri' expects a valid migration protocol");
    expect(a.qmp('query-migrate')).toEqual({ status: 'failed' });
    expect(() => a.qmp('migrate', { uri: 'fd:nosuch' })).toThrow("File descriptor named 'nosuch' has not been found");
    expect(() => a.qmp('migrate', { uri: 'tcp:nohost' })).toThrow("error parsing address 'nohost'");
    expect(() => a.qmp('migrate-incoming', { uri: 'tcp:127.0.0.1:4444' }))
      .toThrow("'-incoming' was not specified on the command line");
    expect(() => a.qmp('migrate', { uri: 'tcp:127.0.0.1:1', blk: true }))
      .toThrow('QEMU compiled without old-style (blk/-b, inc/-i) block migration');
    expect(a.hmp('migrate_incoming tcp:127.0.0.1:4444'))
      .toBe("Error: '-incoming' was not specified on the command line\r\n");
    expect(() => a.qmp('migrate-recover', { uri: 'exec:true' }))
      .toThrow('Migrate recover can only be run when postcopy is paused.');
  });

  it('a refused connection fails in the background and is reported', () => {
    const a = vm();
    const ev = events(a);
    a.qmp('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    expect(a.qmp('migrate', { uri: 'tcp:127.0.0.1:1' })).toEqual({});
    a.runFor(1_000_000);
    expect(ev).toEqual(['MIGRATION {"status":"setup"}', 'MIGRATION {"status":"failed"}']);
    expect(a.qmp('query-migrate')).toEqual({
      status: 'failed', 'error-desc': "Failed to connect to '127.0.0.1:1': Connection refused",
    });
    expect(a.hmp('info migrate')).toContain(
      "Migration status: failed (Failed to connect to '127.0.0.1:1': Connection refused)\r\ntotal time: 0 ms\r\n");
    expect(a.reports.at(-1)).toBe("detvm: Failed to connect to '127.0.0.1:1': Connection refused");
    expect(a.hmp('info status')).toBe('VM status: running\r\n');
  });

  it('one migration at a time; none from inmigrate or postmigrate; incoming only once', () => {
    const { a, b } = pair('16K');
    a.runFor(150_000_000);
    a.qmp('migrate', { uri: 'fd:mig0' });
    expect(() => a.qmp('migrate', { uri: 'fd:mig0' })).toThrow("There's a migration process in progress");
    expect(() => a.qmp('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: false }] }))
      .toThrow("There's a migration process in progress");
    expect(() => b.qmp('migrate', { uri: 'fd:mig0' })).toThrow('Guest is waiting for an incoming migration');
    expect(() => b.qmp('migrate-incoming', { uri: 'fd:mig0' })).toThrow('The incoming migration has already been started');
    drive(a, b, () => status(a) === 'completed' && b.kernel.runstate.current === 'running');
    expect(() => a.qmp('migrate', { uri: 'fd:mig0' }))
      .toThrow("Can't migrate the vm that was paused due to previous migration");
    expect(a.qmp('cont')).toEqual({});
  });

  it('capabilities and parameters: query, set, and QEMU\'s checks', () => {
    const a = vm();
    const caps = a.qmp('query-migrate-capabilities') as Array<{ capability: string; state: boolean }>;
    expect(caps.map((c) => c.capability).slice(0, 6))
      .toEqual(['xbzrle', 'rdma-pin-all', 'auto-converge', 'zero-blocks', 'compress', 'events']);
    expect(caps.every((c) => !c.state)).toBe(true);
    expect(a.hmp('migrate_set_capability events on')).toBe('');
    expect(a.hmp('info migrate_capabilities')).toContain('\r\nevents: on\r\n');
    expect(a.hmp('migrate_set_capability nosuch on')).toBe('Error: invalid parameter value: nosuch\r\n');
    expect(a.hmp('migrate_set_capability events maybe'))
      .toBe('Expected \'on\' or \'off\'\r\nTry "help migrate_set_capability" for more information\r\n');
    expect(() => a.qmp('migrate-set-capabilities', { capabilities: [{ capability: 'nosuch', state: true }] }))
      .toThrow("Parameter 'capability' does not accept value 'nosuch'");
    expect(() => a.qmp('migrate-set-capabilities', { capabilities: [{ capability: 'events' }] }))
      .toThrow("Parameter 'capabilities[0].state' is missing");
    expect(() => a.qmp('migrate-set-capabilities', { capabilities: [{ capability: 'xbzrle', state: true }] }))
      .toThrow("detvm does not support the migration capability 'xbzrle'");
    expect(a.qmp('migrate-set-parameters', { 'max-bandwidth': 1000000, 'downtime-limit': 50 })).toEqual({});
    expect(a.qmp('query-migrate-parameters')).toMatchObject({ 'max-bandwidth': 1000000, 'downtime-limit': 50 });
    expect(() => a.qmp('migrate-set-parameters', { 'downtime-limit': 2000001 }))
      .toThrow("Parameter 'downtime_limit' expects an integer in the range of 0 to 2000 seconds");
    expect(() => a.qmp('migrate-set-parameters', { 'max-bandwidth': 'fast' }))
      .toThrow("Invalid parameter type for 'max-bandwidth', expected: size");
    expect(() => a.qmp('migrate-set-parameters', { 'compress-level': 3 }))
      .toThrow("detvm does not support the migration parameter 'compress-level'");
    expect(a.hmp('migrate_set_parameter max-bandwidth 64M')).toBe('');
    expect(a.hmp('migrate_set_parameter downtime-limit 500')).toBe('');
    expect(a.hmp('migrate_set_parameter max-bandwidth lots')).toBe('Error: Invalid size lots\r\n');
    expect(a.hmp('migrate_set_parameter nosuch 1')).toBe('Error: invalid parameter value: nosuch\r\n');
    const params = a.hmp('info migrate_parameters');
    expect(params).toContain('\r\nmax-bandwidth: 67108864 bytes/second\r\ndowntime-limit: 500 ms\r\n');
    expect(params.startsWith('announce-initial: 50 ms\r\n')).toBe(true);
  });

  it('HMP migrate without -d holds the prompt until the end; through QMP it continues detached', () => {
    const { a, b } = pair(null);
    expect(a.hmp('migrate fd:mig0')).toBe('terminal does not allow synchronous migration, continuing detached\r\n');
    drive(a, b, () => status(a) === 'completed');
    const c = createMachine({ kernel: DEMO_ELF_PATH, memory: '16M', monitors: ['tcp:127.0.0.1:4444,server=on,wait=off'] });
    const d = vm({ incoming: 'defer' });
    migrationPipeCreate(c.kernel, d.kernel, 'p');
    d.qmp('migrate-incoming', { uri: 'fd:p' });
    const r = memoryPeerConnect(c.kernel, '127.0.0.1:4444');
    if (!r.ok) throw new Error(r.error);
    c.runFor(10_000_000);
    memoryPeerSend(r.peer, 'migrate fd:p\r');
    drive(c, d, () => status(c) === 'completed');
    c.runFor(5_000_000);
    expect(memoryPeerText(r.peer).endsWith('migrate fd:p\x1b[K\r\n')).toBe(true);
    c.runFor(1_000_000_000);
    expect(memoryPeerText(r.peer).endsWith('migrate fd:p\x1b[K\r\n(qemu) ')).toBe(true);
  });
});
