// Outgoing migration (migration/migration.c, QEMU 7.2): qmp_migrate's checks and transports,
// migrate_fd_connect, cancel, the end of the migration "thread" and cleanup. QEMU runs the
// pre-copy loop in a thread; detvm runs it as steps on the main loop (migration-thread.ts), so
// the guest keeps running between steps and every step happens at a deterministic point.
// Statuses and MIGRATION events follow QEMU: none → setup → active → completed (the source then
// in postmigrate), or → failed / cancelling → cancelled (the guest resumes if it ran).
// Invariant: at most one outgoing migration is running; `out` keeps the last one for queries.

import {
  aioBhNew, qemuBhSchedule, timerNew, QEMU_CLOCK_REALTIME, type VirtualFd,
} from '../loop/index.ts';
import { runstateCheck } from '../system/index.ts';
import { qemuFileWriterCreate } from './qemu-file.ts';
import { qemuSavevmStateBlocked } from './savevm.ts';
import {
  type MigrationChannel, type MigrationMachine, type OutgoingMigration, migrateSetState,
  migrationIsRunning, realtimeMs,
} from './migration-state.ts';
import {
  migrationChannelCreate, migrationChannelWrite, migrationConnect, migrationFdLookup,
  migrationUriParse,
} from './migration-channel.ts';
import { migrationThreadStep } from './migration-thread.ts';
import { migrateFdCleanup, migrationIterationFinish } from './migration-finish.ts';

/** Flush size of the outgoing writer (bytes handed to the channel at once). */
const MIGRATION_FLUSH_BYTES = 256 * 1024;

export interface MigrateOptions {
  blk?: boolean;
  inc?: boolean;
  resume?: boolean;
}

function outgoingCreate(m: MigrationMachine, uri: string): OutgoingMigration {
  const s = {
    status: 'none', uri, error: null, channel: null, connecting: null, f: null, phase: 'connect', completion: null,
    startTimeMs: realtimeMs(m), setupTimeMs: 0, totalTimeMs: 0, downtimeStartMs: 0, downtimeMs: 0,
    expectedDowntimeMs: 0, mbps: 0, pagesPerSecond: 0, iterationStartMs: 0,
    iterationInitialBytes: 0, iterationInitialPages: 0, thresholdSize: 0, windowUsed: 0,
    vmWasRunning: false, precopyBytes: 0, downtimeBytes: 0,
  } as Omit<OutgoingMigration, 'bh' | 'rateTimer'> as OutgoingMigration;
  s.bh = aioBhNew(m.loop.aio, 'migration_thread', () => migrationThreadStep(m, s));
  s.rateTimer = timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, 'migration_rate_limit',
    () => migrationThreadStep(m, s));
  return s;
}

/** @qemu migrate_prepare (7.2): an error text, or null when a migration may start. */
function migratePrepare(m: MigrationMachine, o: MigrateOptions): string | null {
  const s = m.migration.out;
  if (o.resume) {
    if (s === null || s.status !== 'postcopy-paused') return 'Cannot resume if there is no paused migration';
  }
  if (s !== null && migrationIsRunning(s.status)) return "There's a migration process in progress";
  if (runstateCheck(m, 'inmigrate')) return 'Guest is waiting for an incoming migration';
  if (runstateCheck(m, 'postmigrate')) {
    return "Can't migrate the vm that was paused due to previous migration";
  }
  const blocked = qemuSavevmStateBlocked(m.migration.sv);
  if (blocked !== null) return blocked;
  if (o.blk || o.inc) return 'QEMU compiled without old-style (blk/-b, inc/-i) block migration';
  return null;
}

/**
 * Start migrating to `uri`. Returns null when started (a socket connects in the background: a
 * failure to connect shows as status failed), or QEMU's error text.
 * @qemu migration/migration.c qmp_migrate
 */
export function qmpMigrate(m: MigrationMachine, uri: string, o: MigrateOptions = {}): string | null {
  const err = migratePrepare(m, o);
  if (err !== null) return err;
  const s = outgoingCreate(m, uri);
  m.migration.out = s;
  // migrate_init: counters start from zero for the new migration.
  migrateSetState(m, s, 'none', 'setup');
  const p = migrationUriParse(uri, "Parameter 'uri' expects a valid migration protocol");
  if ('error' in p) {
    // An unknown scheme fails without recording an error; a bad address records it.
    if (p.unknown) migrateSetState(m, s, 'setup', 'failed');
    else migrateFdError(m, s, p.error, false);
    return p.error;
  }
  let fd: VirtualFd | string;
  let kind: MigrationChannel['kind'] = 'socket';
  switch (p.kind) {
    case 'socket': {
      const c = migrationConnect(m, p.addr, (r) => {
        s.connecting = null;
        migrateFdConnect(m, s, typeof r === 'string' ? r : migrationChannelCreate(r, 'socket'));
      });
      if (typeof c === 'string') {
        migrateFdError(m, s, c, false);
        return c;
      }
      s.connecting = { fd: c.fd, cancel: c.cancel, error: () => null };
      return null;
    }
    case 'file': {
      const io = m.migration.io?.();
      const r = io ? io.files.openOut(p.path, false) : { ok: false as const, error: 'no host I/O' };
      fd = r.ok ? r.fd : r.error;
      kind = 'file';
      break;
    }
    case 'fd':
      fd = migrationFdLookup(m, p.name);
      break;
    case 'exec': {
      const ex = m.migration.exec;
      const r = ex ? ex.open(m, p.cmd, 'out')
        : { ok: false as const, error: 'exec: migration is disabled (the host has not enabled it)' };
      fd = r.ok ? r.fd : r.error;
      kind = 'command';
      break;
    }
  }
  if (typeof fd === 'string') {
    migrateFdError(m, s, fd, false);
    return fd;
  }
  migrateFdConnect(m, s, migrationChannelCreate(fd, kind));
  return null;
}

/**
 * A failure before the stream started. A failure the command returns is not reported again;
 * one found in the background (a refused connection) is, by the cleanup.
 * @qemu migrate_fd_error (and migrate_fd_cleanup after an asynchronous one)
 */
function migrateFdError(m: MigrationMachine, s: OutgoingMigration, error: string, cleanup: boolean): void {
  migrateSetState(m, s, 'setup', 'failed');
  s.error ??= error;
  s.phase = 'done';
  if (cleanup) migrateFdCleanup(m, s);
}

/**
 * The channel is up (or failed to come up): set the rate limit and start the "thread".
 * @qemu migration/migration.c migrate_fd_connect
 */
export function migrateFdConnect(
  m: MigrationMachine, s: OutgoingMigration, ch: MigrationChannel | string,
): void {
  if (typeof ch === 'string') {
    migrateFdError(m, s, ch, true);
    return;
  }
  s.channel = ch;
  if (s.status === 'cancelling') {
    migrationIterationFinish(m, s);
    return;
  }
  const f = qemuFileWriterCreate((bytes) => {
    const r = migrationChannelWrite(ch, bytes);
    // The host took less than it was given: end this iteration (QEMU's write would block).
    if (ch.queued > 0) f.throttled = true;
    return r;
  }, MIGRATION_FLUSH_BYTES, { donate: true });
  s.f = f;
  s.expectedDowntimeMs = m.migration.config.downtimeLimitMs;
  s.phase = 'iterate';
  s.iterationStartMs = realtimeMs(m);
  qemuBhSchedule(s.bh);
}

/**
 * Stop a running migration: status cancelling now, cancelled once cleaned up; the guest resumes
 * if the migration had stopped it. Nothing happens when none runs. @qemu migrate_fd_cancel
 */
export function qmpMigrateCancel(m: MigrationMachine): void {
  const s = m.migration.out;
  if (s === null || !migrationIsRunning(s.status)) return;
  migrateSetState(m, s, s.status, 'cancelling');
  if (s.connecting !== null) {
    s.connecting.cancel();
    s.connecting = null;
    migrationIterationFinish(m, s);
    return;
  }
  // qemu_file_shutdown: the next step sees the migration cancelled and ends it.
  if (s.phase !== 'done') qemuBhSchedule(s.bh);
}

