// The body of QEMU's migration thread (migration/migration.c migration_thread, 7.2) as steps
// on the main loop. A step runs from a bottom half (or the rate-limit timer, or when the
// channel drains) and does one pass of the thread's loop: the first step sends the header and
// the setup sections and enters `active`; later steps send RAM until the step's byte budget or
// the 100 ms window's share of max-bandwidth is spent, re-sending what the guest dirtied, and
// complete (stop the VM, send the rest and the devices) once what is left fits the downtime
// limit at the measured bandwidth. The guest runs between steps. Time is the REALTIME clock
// (simulated in virtual mode), so every decision is deterministic there.
// Invariant: a step either finishes the migration or arranges exactly one way to be called again.

import {
  QEMU_CLOCK_REALTIME, qemuBhSchedule, qemuClockGetNs, timerModNs,
} from '../loop/index.ts';
import { runstateGet, runstateIsRunning, vmStopForceState } from '../system/index.ts';
import { strerror } from './errors.ts';
import { globalStateStore } from './global-state.ts';
import { qemuFflush } from './qemu-file.ts';
import {
  qemuSavevmStateCompletePrecopySteps, qemuSavevmStateHeader, qemuSavevmStateIterate,
  qemuSavevmStatePending, qemuSavevmStateSetup,
} from './savevm.ts';
import {
  type MigrationMachine, type OutgoingMigration, migrateSetState, realtimeMs,
} from './migration-state.ts';
import { migrationChannelFlush, migrationChannelWaitWritable } from './migration-channel.ts';
import { migrationIterationFinish } from './migration-finish.ts';

/** @qemu BUFFER_DELAY (ms) and XFER_LIMIT_RATIO */
export const BUFFER_DELAY_MS = 100;
export const XFER_LIMIT_RATIO = 1000 / BUFFER_DELAY_MS;
/**
 * Most bytes one step sends before the guest runs again. QEMU's thread bounds an iteration by
 * 50 ms of wall time; detvm bounds it by bytes, which keeps virtual runs deterministic.
 */
export const MIGRATION_STEP_BYTES = 4 << 20;
/**
 * Bytes queued on a channel above which a step waits for it to drain first. A step also ends
 * early once the channel queues anything (the writer's `throttled`), so the queue stays short:
 * bytes are counted as sent (and the writer reuses its buffer) only when the host took them.
 */
export const MIGRATION_CHANNEL_HIGH_BYTES = 1 << 20;

/** Bytes one rate-limit window (100 ms) allows; 0 for unlimited. */
export function migrationWindowBytes(m: MigrationMachine): number {
  return Math.floor(m.migration.config.maxBandwidth / XFER_LIMIT_RATIO);
}

/** Pages the RAM handler has sent. @qemu ram_get_total_transferred_pages */
function transferredPages(m: MigrationMachine): number {
  const c = m.migration.rs.counters;
  return c.normal + c.duplicate;
}

/** Send RAM bytes and account them to pre-copy or downtime. */
function sendAccounted<T>(m: MigrationMachine, s: OutgoingMigration, fn: () => T): T {
  const before = m.migration.rs.counters.transferred;
  const r = fn();
  const delta = m.migration.rs.counters.transferred - before;
  // @qemu ram_transferred_add: bytes sent while the guest runs are pre-copy, the rest downtime.
  if (runstateIsRunning(m)) s.precopyBytes += delta;
  else s.downtimeBytes += delta;
  return r;
}

/** Header and setup sections, then `active`. @qemu migration_thread (its prologue) */
function migrationThreadSetup(m: MigrationMachine, s: OutgoingMigration): void {
  const ms = m.migration;
  const f = s.f!;
  s.iterationStartMs = realtimeMs(m);
  s.iterationInitialBytes = 0;
  s.iterationInitialPages = 0;
  qemuSavevmStateHeader(ms.sv, f);
  sendAccounted(m, s, () => qemuSavevmStateSetup(ms.sv, f));
  migrateSetState(m, s, 'setup', 'active');
  s.setupTimeMs = realtimeMs(m) - s.startTimeMs;
}

/**
 * One iteration: send more, or complete when what remains is below the threshold.
 * @qemu migration_iteration_run (7.2)
 */
function migrationIterationRun(m: MigrationMachine, s: OutgoingMigration): 'resume' | 'break' | 'wait' {
  const ms = m.migration;
  const f = s.f!;
  // QEMU's thread writes blocking, so what it sent before has reached the socket when it looks
  // at what is left: wait for the channel's queue to drain before deciding.
  if (s.channel !== null && migrationChannelFlush(s.channel) > 0) return 'wait';
  const pending = qemuSavevmStatePending(ms.sv, s.thresholdSize);
  if (pending > 0 && pending >= s.thresholdSize) {
    const window = migrationWindowBytes(m);
    const left = window > 0 ? window - s.windowUsed : Number.MAX_SAFE_INTEGER;
    f.rateLimitUsed = 0;
    f.rateLimitMax = Math.max(1, Math.min(MIGRATION_STEP_BYTES, left));
    f.throttled = false;
    const errs: string[] = [];
    sendAccounted(m, s, () => qemuSavevmStateIterate(ms.sv, f, errs));
    s.windowUsed += f.rateLimitUsed;
    if (errs.length > 0) s.error ??= errs[errs.length - 1]!;
    return 'resume';
  }
  migrationCompletion(m, s);
  return 'break';
}

/**
 * Stop the VM and send everything left: END sections, devices, EOF, vmdesc. QEMU's thread
 * does this holding the BQL, its writes blocking while the socket is full, so the main loop
 * waits and the transfer overlaps the work. detvm pauses the stop-and-copy whenever the
 * channel queues more than MIGRATION_CHANNEL_HIGH_BYTES and holds the loop off meanwhile
 * (loop.exclusive): iterations only poll and resume it once the channel drains, so nothing
 * else (a monitor's `cont`, a timer) runs in the middle of the stream.
 * @qemu migration_completion (precopy)
 */
function migrationCompletion(m: MigrationMachine, s: OutgoingMigration): void {
  const ms = m.migration;
  const f = s.f!;
  if (s.status !== 'active') return;
  s.downtimeStartMs = realtimeMs(m);
  s.vmWasRunning = runstateIsRunning(m);
  globalStateStore(ms.gs, runstateGet(m));
  vmStopForceState(m, 'finish-migrate');
  f.rateLimitMax = 0;
  const ch = s.channel;
  const pause = (): boolean => ch !== null && ch.error === null && ch.queued > MIGRATION_CHANNEL_HIGH_BYTES;
  const errs: string[] = [];
  s.completion = { steps: qemuSavevmStateCompletePrecopySteps(ms.sv, f, errs, pause), errs };
  s.phase = 'complete';
  migrationCompletionStep(m, s);
}

/**
 * Run the stop-and-copy until it pauses, then wait for the channel holding the loop off and
 * return false; or until it ends (phase drain, or status failed) and return true.
 */
function migrationCompletionStep(m: MigrationMachine, s: OutgoingMigration): boolean {
  const c = s.completion!;
  const ch = s.channel;
  const r = ch === null || ch.error === null ? sendAccounted(m, s, () => c.steps.next()) : null;
  if (r !== null && !r.done && ch !== null && ch.error === null) {
    m.loop.exclusive = () => ch.watch;
    migrationChannelWaitWritable(m, ch, () => {
      migrationChannelFlush(ch);
      if (migrationCompletionStep(m, s)) migrationCompleted(m, s);
    });
    return false;
  }
  m.loop.exclusive = null;
  s.completion = null;
  const f = s.f!;
  const ret = r !== null && r.done ? r.value : -1;
  qemuFflush(f);
  if (ret < 0 || f.error < 0 || (ch !== null && ch.error !== null)) {
    s.error ??= ch?.error ?? c.errs[c.errs.length - 1] ?? strerror(-(f.error || ret));
    migrateSetState(m, s, 'active', 'failed');
  } else {
    s.phase = 'drain';
  }
  return true;
}

/** After the stop-and-copy: drain what is queued, or end a failed migration. */
function migrationCompleted(m: MigrationMachine, s: OutgoingMigration): void {
  if (s.status === 'active') migrationDrain(m, s);
  else migrationIterationFinish(m, s);
}

/**
 * Whether the migration must end: cancelled, or a write failed (then failed).
 * @qemu migration_detect_error
 */
function migrationDetectError(m: MigrationMachine, s: OutgoingMigration): boolean {
  if (s.status === 'cancelling' || s.status === 'cancelled') return true;
  if (s.status !== 'active' && s.status !== 'setup') return true;
  const ch = s.channel;
  const ferr = s.f?.error ?? 0;
  if (ferr === 0 && (ch === null || ch.error === null)) return false;
  s.error ??= ch?.error ?? `Unable to write: ${strerror(-ferr)}`;
  migrateSetState(m, s, s.status, 'failed');
  return true;
}

/**
 * Bytes of the stream the host has taken (put, less what the channel still queues): what
 * QEMU's blocking writes have sent when its thread counts them (qemu_ftell_fast).
 * @qemu migration_total_bytes
 */
function migrationTotalBytes(s: OutgoingMigration): number {
  return s.f!.transferred - (s.channel?.queued ?? 0);
}

/**
 * Measure the last window's bandwidth, from which the stop-and-copy threshold follows, and
 * start a new window. @qemu migration_update_counters
 */
function migrationUpdateCounters(m: MigrationMachine, s: OutgoingMigration, nowMs: number): void {
  if (nowMs < s.iterationStartMs + BUFFER_DELAY_MS) return;
  const current = migrationTotalBytes(s);
  const transferred = current - s.iterationInitialBytes;
  const timeSpent = nowMs - s.iterationStartMs;
  const bandwidth = transferred / timeSpent;
  s.thresholdSize = Math.floor(bandwidth * m.migration.config.downtimeLimitMs);
  s.mbps = ((transferred * 8) / (timeSpent / 1000)) / 1000 / 1000;
  const pages = transferredPages(m);
  s.pagesPerSecond = Math.floor((pages - s.iterationInitialPages) / (timeSpent / 1000));
  s.windowUsed = 0;
  s.iterationStartMs = nowMs;
  s.iterationInitialBytes = current;
  s.iterationInitialPages = pages;
}

/** Arrange the next step: at the end of a spent window, or at once. @qemu migration_rate_limit */
function migrationRateLimit(m: MigrationMachine, s: OutgoingMigration): void {
  const now = realtimeMs(m);
  migrationUpdateCounters(m, s, now);
  const window = migrationWindowBytes(m);
  if (window > 0 && s.windowUsed > window) {
    const atNs = (s.iterationStartMs + BUFFER_DELAY_MS) * 1_000_000;
    timerModNs(s.rateTimer, Math.max(atNs, qemuClockGetNs(m.clocks, QEMU_CLOCK_REALTIME)));
    return;
  }
  qemuBhSchedule(s.bh);
}

/** Wait until the channel has sent everything, then complete. */
function migrationDrain(m: MigrationMachine, s: OutgoingMigration): void {
  const ch = s.channel!;
  const left = migrationChannelFlush(ch);
  if (ch.error !== null || s.status !== 'active') {
    if (s.status === 'active') {
      s.error ??= ch.error;
      migrateSetState(m, s, 'active', 'failed');
    }
    migrationIterationFinish(m, s);
    return;
  }
  if (left > 0) {
    migrationChannelWaitWritable(m, ch, () => migrationThreadStep(m, s));
    return;
  }
  migrateSetState(m, s, 'active', 'completed');
  migrationIterationFinish(m, s);
}

/** One step of the migration "thread" (see the header). @qemu migration_thread (loop body) */
export function migrationThreadStep(m: MigrationMachine, s: OutgoingMigration): void {
  // A paused stop-and-copy goes on from its channel's watch only.
  if (s.phase === 'done' || s.phase === 'complete' || s.f === null) return;
  if (s.phase === 'drain') {
    migrationDrain(m, s);
    return;
  }
  if (s.status === 'setup') migrationThreadSetup(m, s);
  const ch = s.channel!;
  if (migrationDetectError(m, s)) {
    migrationIterationFinish(m, s);
    return;
  }
  if (migrationChannelFlush(ch) > MIGRATION_CHANNEL_HIGH_BYTES) {
    migrationChannelWaitWritable(m, ch, () => migrationThreadStep(m, s));
    return;
  }
  const window = migrationWindowBytes(m);
  if (window === 0 || s.windowUsed <= window) {
    const r = migrationIterationRun(m, s);
    if (r === 'wait') {
      migrationChannelWaitWritable(m, ch, () => migrationThreadStep(m, s));
      return;
    }
    if (r === 'break') {
      // A paused stop-and-copy goes on from the channel's watch.
      if (s.completion === null) migrationCompleted(m, s);
      return;
    }
  }
  if (migrationDetectError(m, s)) {
    migrationIterationFinish(m, s);
    return;
  }
  migrationRateLimit(m, s);
}
