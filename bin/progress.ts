// Progress of long operations on the terminal (host layer): one line on stderr, redrawn in place
// with `\r` and erased when the operation ends, only when stderr is a terminal. What is shown is
// read from the machine, never computed inside it: an outgoing migration that an HMP `migrate`
// (without -d) waits for (query-migrate's RAM counters), savevm and loadvm (observed through the
// block files they write and read, with the RAM handler's counters), and `detvm replay` runs.
// Invariant: only plain reads of machine state, never a clock (in live mode a clock read is host
// input that a recording logs), so watching changes nothing in the run, its trace or its log.

import type { DetvmMachine } from '../index.ts';
import type { BlockFile, BlockFileProvider } from '../core/block/index.ts';
import { ramBytesRemaining, ramBytesTotal } from '../core/migration/index.ts';

/** Where the line goes: process.stderr, or a fake terminal in tests. */
export interface ProgressStream {
  readonly isTTY?: boolean;
  write(s: string): unknown;
}

/** One progress line. */
export interface ProgressLine {
  /**
   * Show `label` at `done` of `total` (null: total unknown), in bytes or in a counted `unit`
   * ("iterations"). Redraws at most every interval.
   */
  show(label: string, done: number, total: number | null, unit?: string): void;
  /** The operation ended: erase the line, if shown. */
  clear(): void;
  /** Erase the line for other output; the operation goes on (the next show redraws it). */
  erase(): void;
  /** Whether a line is on the screen. */
  readonly active: boolean;
}

/** Wall time between two redraws. */
export const PROGRESS_INTERVAL_MS = 100;
/** An operation shorter than this shows no line at all (no flicker for quick ones). */
export const PROGRESS_DELAY_MS = 300;

const MIB = 1024 * 1024;

/**
 * The text of a progress line: "savevm: 42% (53.8 of 128.0 MiB)", "loadvm: 12.5 MiB", or with a
 * unit "replay: 50% (1000 of 2000 iterations)".
 */
export function progressText(label: string, done: number, total: number | null, unit?: string): string {
  const amount = (n: number): string => (unit === undefined ? (n / MIB).toFixed(1) : String(n));
  const suffix = unit ?? 'MiB';
  if (total === null || total <= 0) return `${label}: ${amount(done)} ${suffix}`;
  const pct = Math.min(100, Math.floor((done * 100) / total));
  return `${label}: ${pct}% (${amount(done)} of ${amount(total)} ${suffix})`;
}

/**
 * A progress line on `stream`; does nothing unless `stream.isTTY`. `now` is the wall clock in
 * milliseconds (injected so tests are deterministic). The first show starts the operation; the
 * line appears once it has lasted `delayMs`, then redraws at most every `intervalMs`.
 */
export function progressLineCreate(
  stream: ProgressStream, now: () => number = () => performance.now(),
  intervalMs = PROGRESS_INTERVAL_MS, delayMs = PROGRESS_DELAY_MS,
): ProgressLine {
  const tty = stream.isTTY === true;
  let shown = '';
  let startMs: number | null = null;
  let lastMs = -Infinity;
  const erase = (): void => {
    if (shown === '') return;
    shown = '';
    lastMs = -Infinity;
    stream.write('\r\x1b[K');
  };
  return {
    show(label, done, total, unit) {
      if (!tty) return;
      const t = now();
      startMs ??= t;
      if (t - startMs < delayMs || t - lastMs < intervalMs) return;
      const text = progressText(label, done, total, unit);
      if (text === shown) return;
      lastMs = t;
      shown = text;
      stream.write(`\r\x1b[K${text}`);
    },
    clear() {
      startMs = null;
      erase();
    },
    erase,
    get active() {
      return shown !== '';
    },
  };
}

/**
 * Erase the line before anything else is written to `out` (the guest's console, the monitor on
 * stdout), so output never lands after the progress text; the next show redraws it below.
 */
export function progressGuardStream(line: ProgressLine, out: { write: (...args: never[]) => boolean }): void {
  const write = out.write.bind(out) as (...args: unknown[]) => boolean;
  out.write = ((...args: unknown[]): boolean => {
    line.erase();
    return write(...args);
  }) as typeof out.write;
}

/** Outgoing migration states in which the transfer goes on. */
const MIGRATING = new Set(['setup', 'active', 'pre-switchover', 'device', 'cancelling']);

/** What a machine shows on a progress line. */
export interface MachineProgress {
  /** Look at the machine (after each main-loop iteration). */
  poll(): void;
  /** `files` with savevm's writes and loadvm's reads observed. */
  blockFiles(files: BlockFileProvider): BlockFileProvider;
}

/**
 * Progress of `vm`'s long operations on `line`: a migration an HMP monitor waits for (a suspended
 * HMP monitor: `migrate` without -d), and savevm/loadvm, whose vmstate streams through the block
 * files while the VM is in save-vm or restore-vm.
 */
export function machineProgressCreate(getVm: () => DetvmMachine | null, line: ProgressLine): MachineProgress {
  let what: 'migrate' | 'snapshot' | null = null;
  let loadBytes = 0;
  const snapshotTick = (bytes: number): void => {
    const vm = getVm();
    if (!vm) return;
    const state = vm.kernel.runstate.current;
    if (state === 'save-vm') {
      const rs = vm.kernel.migration.rs;
      const total = ramBytesTotal(rs);
      what = 'snapshot';
      line.show('savevm', total - ramBytesRemaining(rs), total);
    } else if (state === 'restore-vm') {
      loadBytes += bytes;
      what = 'snapshot';
      line.show('loadvm', loadBytes, null);
    }
  };
  const wrap = (f: BlockFile): BlockFile => ({
    get name() { return f.name; },
    get readOnly() { return f.readOnly; },
    size: () => f.size(),
    pread: (offset, buf) => {
      f.pread(offset, buf);
      snapshotTick(buf.length);
    },
    pwrite: (offset, data) => {
      f.pwrite(offset, data);
      snapshotTick(0);
    },
    flush: () => f.flush(),
    truncate: (size) => f.truncate(size),
    close: () => f.close(),
  });
  return {
    poll() {
      const vm = getVm();
      if (!vm) return;
      if (what === 'snapshot') {
        const state = vm.kernel.runstate.current;
        if (state !== 'save-vm' && state !== 'restore-vm') {
          line.clear();
          what = null;
          loadBytes = 0;
        }
        return;
      }
      const out = vm.kernel.migration.out;
      const waiting = vm.monitors.list.some((mon) => mon.kind === 'hmp' && mon.suspendCnt > 0);
      if (out !== null && MIGRATING.has(out.status) && waiting) {
        // query-migrate's ram total and remaining, read directly: query-migrate itself reads
        // the REALTIME clock, which in live mode is host input (a recording would log it).
        const rs = vm.kernel.migration.rs;
        const total = ramBytesTotal(rs);
        what = 'migrate';
        // In setup there are no RAM counters yet.
        if (out.status !== 'setup') line.show('migrate', total - ramBytesRemaining(rs), total);
      } else if (what === 'migrate') {
        line.clear();
        what = null;
      }
    },
    blockFiles(files) {
      return {
        kind: files.kind,
        open: (path, readOnly) => wrap(files.open(path, readOnly)),
        create: (path) => wrap(files.create(path)),
      };
    },
  };
}
