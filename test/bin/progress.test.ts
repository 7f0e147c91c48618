// Progress of long operations on a terminal (bin/progress.ts): the line is drawn only on a TTY,
// after a short delay, redrawn with `\r` at most every interval, erased before other output and
// at the end. Driven by a fake terminal stream and a fake wall clock; the machine side runs in
// virtual time: an HMP `migrate` (without -d) on a monitor socket, waited for by the monitor,
// shows RAM progress from query-migrate's counters, and savevm/loadvm show theirs through the
// block files they write and read. The same run gives the same lines.
import { describe, expect, it } from 'vitest';
import {
  progressLineCreate, progressText, progressGuardStream, machineProgressCreate, PROGRESS_DELAY_MS, PROGRESS_INTERVAL_MS,
  type ProgressLine,
} from '../../bin/progress.ts';
import { createMachine, type DetvmMachine } from '../../index.ts';
import { memoryPeerConnect, memoryPeerSend, memoryPeerText } from '../../chardev/index.ts';
import { migrationPipeCreate } from '../../core/migration/index.ts';
import { memBlockFileProviderCreate, qcow2Create } from '../../core/block/index.ts';

/** A fake terminal: what was written, and a clock the test moves. */
function fakeTty(isTTY = true): { stream: { isTTY: boolean; write(s: string): boolean }; out: string[]; clock: { ms: number } } {
  const out: string[] = [];
  return { stream: { isTTY, write: (s: string) => (out.push(s), true) }, out, clock: { ms: 0 } };
}

describe('the progress line', () => {
  it('texts', () => {
    expect(progressText('savevm', 53.75 * 1048576, 128 * 1048576)).toBe('savevm: 41% (53.8 of 128.0 MiB)');
    expect(progressText('loadvm', 12.5 * 1048576, null)).toBe('loadvm: 12.5 MiB');
    expect(progressText('replay', 1000, 2000, 'iterations')).toBe('replay: 50% (1000 of 2000 iterations)');
  });

  it('on a terminal: delayed, throttled, redrawn in place, erased at the end', () => {
    const t = fakeTty();
    const line = progressLineCreate(t.stream, () => t.clock.ms);
    line.show('migrate', 0, 100);
    expect(t.out).toEqual([]); // a quick operation shows nothing
    t.clock.ms = PROGRESS_DELAY_MS;
    line.show('migrate', 10 * 1048576, 100 * 1048576);
    t.clock.ms += PROGRESS_INTERVAL_MS / 2;
    line.show('migrate', 20 * 1048576, 100 * 1048576); // too soon: skipped
    t.clock.ms += PROGRESS_INTERVAL_MS;
    line.show('migrate', 30 * 1048576, 100 * 1048576);
    expect(line.active).toBe(true);
    line.clear();
    line.clear();
    expect(line.active).toBe(false);
    expect(t.out).toEqual([
      '\r\x1b[Kmigrate: 10% (10.0 of 100.0 MiB)',
      '\r\x1b[Kmigrate: 30% (30.0 of 100.0 MiB)',
      '\r\x1b[K',
    ]);
  });

  it('not a terminal: nothing at all', () => {
    const t = fakeTty(false);
    const line = progressLineCreate(t.stream, () => t.clock.ms);
    for (let i = 0; i < 10; i++, t.clock.ms += 1000) line.show('savevm', i, 10);
    line.clear();
    expect(t.out).toEqual([]);
  });

  it('other output on the terminal erases the line first; the next show redraws it', () => {
    const t = fakeTty();
    const line = progressLineCreate(t.stream, () => t.clock.ms, 100, 0);
    const stdout = { write: (s: string): boolean => (t.out.push(`OUT:${s}`), true) };
    progressGuardStream(line, stdout);
    line.show('replay', 1, 4, 'iterations');
    stdout.write('tick 3 hart 0\r\n');
    line.show('replay', 2, 4, 'iterations');
    expect(t.out).toEqual([
      '\r\x1b[Kreplay: 25% (1 of 4 iterations)', '\r\x1b[K', 'OUT:tick 3 hart 0\r\n', '\r\x1b[Kreplay: 50% (2 of 4 iterations)',
    ]);
  });
});

/** A progress line that logs every show (no throttling) and its clears. */
function recordingLine(): ProgressLine & { log: string[] } {
  const log: string[] = [];
  let active = false;
  return {
    log,
    show: (label, done, total, unit) => {
      active = true;
      log.push(progressText(label, done, total, unit));
    },
    clear: () => {
      if (active) log.push('clear');
      active = false;
    },
    erase: () => {},
    get active() {
      return active;
    },
  };
}

describe('what a machine shows', () => {
  it('an HMP migrate without -d: RAM progress until it completes, then the line goes', () => {
    const line = recordingLine();
    let a: DetvmMachine | null = null;
    const progress = machineProgressCreate(() => a, line);
    a = createMachine({ kernel: 'guests/bin/demo.elf', memory: '16M', monitors: ['tcp:127.0.0.1:4444,server=on,wait=off'] });
    const b = createMachine({ kernel: 'guests/bin/demo.elf', memory: '16M', incoming: 'defer' });
    migrationPipeCreate(a.kernel, b.kernel, 'mig0');
    b.qmp('migrate-incoming', { uri: 'fd:mig0' });
    a.hmp('migrate_set_parameter max-bandwidth 20k'); // 16M of mostly zero pages: about 40 KiB
    const c = memoryPeerConnect(a.kernel, '127.0.0.1:4444');
    if (!c.ok) throw new Error(c.error);
    a.runFor(200_000_000);
    memoryPeerSend(c.peer, 'migrate fd:mig0\r');
    for (let i = 0; i < 400_000 && a.kernel.migration.out?.status !== 'completed'; i++) {
      a.step();
      progress.poll();
      b.step();
    }
    expect(a.kernel.migration.out?.status).toBe('completed');
    for (let i = 0; i < 10; i++) {
      a.step();
      progress.poll();
    }
    const shown = [...new Set(line.log.filter((l) => l !== 'clear'))];
    expect(shown.length).toBeGreaterThan(3);
    expect(shown[0]).toMatch(/^migrate: \d+% \(\d+\.\d of 16\.\d MiB\)$/);
    const pct = shown.map((l) => Number(/(\d+)%/.exec(l)![1]));
    expect(pct).toEqual([...pct].sort((x, y) => x - y)); // never goes back
    expect(line.log.at(-1)).toBe('clear');
    expect(line.log.filter((l) => l === 'clear')).toHaveLength(1);
    // hmp_migrate_status_cb gives the monitor its prompt back within a second.
    a.runFor(1_500_000_000);
    expect(memoryPeerText(c.peer).match(/\(qemu\) /g)).toHaveLength(2);
  });

  it('watching changes nothing: the same trace hash with and without the progress line', () => {
    const runOnce = (watch: boolean): string => {
      const line = recordingLine();
      let a: DetvmMachine | null = null;
      const progress = machineProgressCreate(() => a, line);
      a = createMachine({ kernel: 'guests/bin/demo.elf', memory: '16M', trace: 1, monitors: ['tcp:127.0.0.1:4444,server=on,wait=off'] });
      const b = createMachine({ kernel: 'guests/bin/demo.elf', memory: '16M', incoming: 'defer' });
      migrationPipeCreate(a.kernel, b.kernel, 'mig0');
      b.qmp('migrate-incoming', { uri: 'fd:mig0' });
      a.hmp('migrate_set_parameter max-bandwidth 20k');
      const c = memoryPeerConnect(a.kernel, '127.0.0.1:4444');
      if (!c.ok) throw new Error(c.error);
      memoryPeerSend(c.peer, 'migrate fd:mig0\r', 100_000_000);
      for (let i = 0; i < 400_000 && a.kernel.migration.out?.status !== 'completed'; i++) {
        a.step();
        if (watch) progress.poll();
        b.step();
      }
      expect(line.log.length > 0).toBe(watch);
      return a.trace.hash();
    };
    expect(runOnce(true)).toBe(runOnce(false));
  });

  it('a migrate with -d: nobody waits, no line', () => {
    const line = recordingLine();
    let a: DetvmMachine | null = null;
    const progress = machineProgressCreate(() => a, line);
    a = createMachine({ kernel: 'guests/bin/demo.elf', memory: '16M' });
    const b = createMachine({ kernel: 'guests/bin/demo.elf', memory: '16M', incoming: 'defer' });
    migrationPipeCreate(a.kernel, b.kernel, 'mig0');
    b.qmp('migrate-incoming', { uri: 'fd:mig0' });
    a.hmp('migrate_set_parameter max-bandwidth 1M');
    a.hmp('migrate -d fd:mig0');
    for (let i = 0; i < 400_000 && a.kernel.migration.out?.status !== 'completed'; i++) {
      a.step();
      progress.poll();
      b.step();
    }
    expect(a.kernel.migration.out?.status).toBe('completed');
    expect(line.log).toEqual([]);
  });

  it('savevm and loadvm: progress through the block files, cleared when the VM runs again', () => {
    const line = recordingLine();
    let vm: DetvmMachine | null = null;
    const progress = machineProgressCreate(() => vm, line);
    const mem = memBlockFileProviderCreate();
    const f = mem.create('disk.qcow2');
    qcow2Create(f, { size: 64 * 1024 * 1024 });
    f.close();
    vm = createMachine({
      kernel: 'guests/bin/demo.elf', memory: '16M', blockFiles: progress.blockFiles(mem),
      drives: ['if=none,file=disk.qcow2,format=qcow2,id=d0'], devices: ['virtio-blk-device,drive=d0'],
    });
    vm.runFor(100_000_000);
    expect(vm.hmp('savevm s1')).toBe('');
    progress.poll();
    const saved = [...line.log];
    expect(saved.at(-1)).toBe('clear');
    expect(saved.filter((l) => l.startsWith('savevm: ')).length).toBeGreaterThan(0);
    expect(saved.at(-2)).toMatch(/^savevm: 100% \(16\.\d of 16\.\d MiB\)$/);
    line.log.length = 0;
    expect(vm.hmp('loadvm s1')).toBe('');
    progress.poll();
    expect(line.log.at(-1)).toBe('clear');
    expect(line.log.filter((l) => /^loadvm: \d+\.\d MiB$/.test(l)).length).toBeGreaterThan(0);
    vm.close();
  });
});
