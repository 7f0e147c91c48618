// The migration part of a machine (QEMU's MigrationState and MigrationIncomingState globals,
// migration/migration.c): the savevm registry with the RAM handler and globalstate, the
// capabilities and parameters, the current or last outgoing and incoming migration, the
// statuses with their MIGRATION events, and query-migrate's information. The outgoing and
// incoming drivers are in migration.ts and migration-incoming.ts.
// Invariant: a status changes only through migrateSetState, which raises the MIGRATION event.

import {
  QEMU_CLOCK_REALTIME, qemuClockGetNs, type LoopSource, type QEMUBH, type QEMUTimer, type VirtualFd,
} from '../loop/index.ts';
import { type SystemMachine, qapiEventSend } from '../system/index.ts';
import type { ChardevIo, SocketAddress } from '../host/index.ts';
import type { LoadvmState } from './loadvm.ts';
import { type MigrationConfig, migrationConfigCreate } from './migration-params.ts';
import type { QEMUFileWriter } from './qemu-file.ts';
import { type RamState, ramBytesRemaining, ramBytesTotal } from './ram.ts';
import type { SaveVMState } from './savevm.ts';
import type { GlobalState } from './global-state.ts';
import { TARGET_PAGE_SIZE } from '../memory/index.ts';

/** MigrationStatus in QEMU 7.2's enum order. */
export const MIGRATION_STATUSES = [
  'none', 'setup', 'cancelling', 'cancelled', 'active', 'postcopy-active', 'postcopy-paused',
  'postcopy-recover', 'completed', 'failed', 'colo', 'pre-switchover', 'device', 'wait-unplug',
] as const;
export type MigrationStatus = (typeof MIGRATION_STATUSES)[number];

/** Where a migration stream goes or comes from: a connected stream descriptor and its queue. */
export interface MigrationChannel {
  fd: VirtualFd;
  /** What QEMU's error texts call it: "Unable to write to socket", "... to file". */
  kind: 'socket' | 'file' | 'command';
  /** Bytes the descriptor has not accepted yet, oldest first. */
  queue: Uint8Array[];
  queued: number;
  /** The first write error, as QEMU's Error text. */
  error: string | null;
  /** Output watch waiting for the descriptor to become writable, or null. */
  watch: LoopSource | null;
}

/** Executes `exec:` URIs (a shell command): provided by the host in live mode, off otherwise. */
export interface MigrationExecProvider {
  /** Run `cmd`; its stdin (outgoing) or stdout (incoming) as a stream descriptor. */
  open(m: SystemMachine, cmd: string, dir: 'out' | 'in'): { ok: true; fd: VirtualFd } | { ok: false; error: string };
}

/** One outgoing migration. @qemu migration/migration.h MigrationState */
export interface OutgoingMigration {
  status: MigrationStatus;
  uri: string;
  /** error_get_pretty(s->error), the cause of a failure. */
  error: string | null;
  channel: MigrationChannel | null;
  /** Pending connect (tcp:, unix:), until it succeeds or fails. */
  connecting: { fd: VirtualFd; cancel: () => void; error: () => string | null } | null;
  f: QEMUFileWriter | null;
  /**
   * Where the driver is: waiting to connect, iterating, completing (the stop-and-copy, paused
   * while the channel is backed up), draining what it queued, done.
   */
  phase: 'connect' | 'iterate' | 'complete' | 'drain' | 'done';
  /** The stop-and-copy in progress (phase 'complete'), and the messages it reported. */
  completion: { steps: Generator<void, number, void>; errs: string[] } | null;
  bh: QEMUBH;
  rateTimer: QEMUTimer;
  /** Milliseconds of REALTIME (qemu_clock_get_ms). */
  startTimeMs: number;
  setupTimeMs: number;
  totalTimeMs: number;
  downtimeStartMs: number;
  downtimeMs: number;
  expectedDowntimeMs: number;
  mbps: number;
  pagesPerSecond: number;
  iterationStartMs: number;
  iterationInitialBytes: number;
  iterationInitialPages: number;
  /** Bytes that may be left for stop-and-copy: bandwidth × downtime limit. */
  thresholdSize: number;
  /** Bytes sent in the current 100 ms rate-limit window. */
  windowUsed: number;
  vmWasRunning: boolean;
  /** RAM bytes sent while the guest ran, and while it was stopped. */
  precopyBytes: number;
  downtimeBytes: number;
}

/** The incoming side. @qemu MigrationIncomingState */
export interface IncomingMigration {
  status: MigrationStatus;
  /** `-incoming defer`, or a URI: the machine waits in inmigrate. */
  deferred: boolean;
  /** migrate-incoming may be used (QEMU's static `once`). */
  started: boolean;
  uri: string | null;
  /** Listening sockets (`socket address` in info migrate). */
  socketAddresses: SocketAddress[];
  listener: { close: () => void; fd: VirtualFd; address: () => SocketAddress } | null;
  channel: VirtualFd | null;
  watch: LoopSource | null;
  load: LoadvmState | null;
  bh: QEMUBH | null;
}

export interface MigrationState {
  sv: SaveVMState;
  rs: RamState;
  gs: GlobalState;
  config: MigrationConfig;
  out: OutgoingMigration | null;
  incoming: IncomingMigration;
  /** Re-derive what the sections do not carry, after a load was committed. */
  postLoad: () => void;
  /**
   * Bring guest RAM back to its contents at reset (the machine's ROM images over zeros), or
   * null when the machine cannot. With it, an incoming migration loads RAM pages in place.
   */
  ramReset: (() => void) | null;
  /** Sockets and files (set by the composition root; the in-memory ones by default). */
  io: (() => ChardevIo) | null;
  /** Named stream descriptors for `fd:NAME` URIs (QEMU's monitor fds; detvm's in-memory pipes). */
  fds: Map<string, VirtualFd>;
  exec: MigrationExecProvider | null;
}

/** A machine with migration support. */
export interface MigrationMachine extends SystemMachine {
  migration: MigrationState;
}

export function incomingCreate(): IncomingMigration {
  return {
    status: 'none', deferred: false, started: false, uri: null, socketAddresses: [], listener: null,
    channel: null, watch: null, load: null, bh: null,
  };
}

export function migrationStateCreate(sv: SaveVMState, rs: RamState, gs: GlobalState): MigrationState {
  return {
    sv, rs, gs, config: migrationConfigCreate(), out: null, incoming: incomingCreate(),
    postLoad: () => {}, ramReset: null, io: null, fds: new Map(), exec: null,
  };
}

/**
 * Wire the migration state into its machine: MIGRATION_PASS after each dirty-bitmap sync when
 * the events capability is on. @qemu migration/ram.c migration_bitmap_sync (its event)
 */
export function migrationMachineInit(m: MigrationMachine): void {
  m.migration.rs.onSync = (pass) => {
    if (m.migration.config.caps.events) qapiEventSend(m, 'MIGRATION_PASS', { pass });
  };
}

/** @qemu qemu_clock_get_ms(QEMU_CLOCK_REALTIME) */
export function realtimeMs(m: SystemMachine): number {
  return Math.floor(qemuClockGetNs(m.clocks, QEMU_CLOCK_REALTIME) / 1_000_000);
}

/**
 * Move `st` from `from` to `to` if it is in `from`, raising MIGRATION when the events
 * capability is on. Returns whether it moved. @qemu migrate_set_state
 */
export function migrateSetState(
  m: MigrationMachine, st: { status: MigrationStatus }, from: MigrationStatus, to: MigrationStatus,
): boolean {
  if (st.status !== from) return false;
  st.status = to;
  if (m.migration.config.caps.events) qapiEventSend(m, 'MIGRATION', { status: to });
  return true;
}

/** @qemu migration_is_running */
export function migrationIsRunning(status: MigrationStatus): boolean {
  switch (status) {
    case 'active': case 'postcopy-active': case 'postcopy-paused': case 'postcopy-recover':
    case 'setup': case 'pre-switchover': case 'device': case 'wait-unplug': case 'cancelling':
      return true;
    default:
      return false;
  }
}

/** query-migrate's RAM block (MigrationStats). */
export interface MigrationRamInfo {
  transferred: number;
  remaining: number | null;
  total: number;
  duplicate: number;
  skipped: number;
  normal: number;
  normalBytes: number;
  dirtyPagesRate: number;
  mbps: number;
  dirtySyncCount: number;
  postcopyRequests: number;
  pageSize: number;
  multifdBytes: number;
  pagesPerSecond: number;
  precopyBytes: number;
  downtimeBytes: number;
  postcopyBytes: number;
  dirtySyncMissedZeroCopy: number;
}

/** MigrationInfo as plain data; absent members are undefined. @qemu MigrationInfo */
export interface MigrationInfo {
  status?: MigrationStatus;
  ram?: MigrationRamInfo;
  totalTime?: number;
  expectedDowntime?: number;
  downtime?: number;
  setupTime?: number;
  errorDesc?: string;
  blockedReasons?: string[];
  socketAddress?: SocketAddress[];
}

function ramInfo(ms: MigrationState, s: OutgoingMigration): MigrationRamInfo {
  const c = ms.rs.counters;
  return {
    transferred: c.transferred, remaining: s.status === 'completed' ? null : ramBytesRemaining(ms.rs),
    total: ramBytesTotal(ms.rs), duplicate: c.duplicate, skipped: 0, normal: c.normal,
    normalBytes: c.normal * TARGET_PAGE_SIZE, dirtyPagesRate: 0, mbps: s.mbps,
    dirtySyncCount: c.dirtySyncCount, postcopyRequests: 0, pageSize: TARGET_PAGE_SIZE,
    multifdBytes: 0, pagesPerSecond: s.pagesPerSecond, precopyBytes: s.precopyBytes,
    downtimeBytes: s.downtimeBytes, postcopyBytes: 0, dirtySyncMissedZeroCopy: 0,
  };
}

/** @qemu fill_source_migration_info (7.2) */
function fillSource(m: MigrationMachine, info: MigrationInfo, blocked: string | null): void {
  if (blocked !== null) info.blockedReasons = [blocked];
  const s = m.migration.out;
  if (s === null || s.status === 'none') return;
  switch (s.status) {
    case 'setup':
      break;
    case 'active': case 'cancelling': case 'postcopy-active': case 'pre-switchover':
    case 'device': case 'postcopy-paused': case 'postcopy-recover': case 'completed': {
      info.setupTime = s.setupTimeMs;
      if (s.status === 'completed') {
        info.totalTime = s.totalTimeMs;
        info.downtime = s.downtimeMs;
      } else {
        info.totalTime = realtimeMs(m) - s.startTimeMs;
        info.expectedDowntime = s.expectedDowntimeMs;
      }
      info.ram = ramInfo(m.migration, s);
      break;
    }
    case 'failed':
      if (s.error !== null) info.errorDesc = s.error;
      break;
    default:
      break;
  }
  info.status = s.status;
}

/** @qemu qmp_query_migrate: the destination's status, then the source's (which wins). */
export function qmpQueryMigrate(m: MigrationMachine, blocked: string | null): MigrationInfo {
  const info: MigrationInfo = {};
  const inc = m.migration.incoming;
  const addrs = inc.listener !== null ? [inc.listener.address()] : inc.socketAddresses;
  if (addrs.length > 0) info.socketAddress = [...addrs];
  if (inc.status !== 'none') info.status = inc.status;
  fillSource(m, info, blocked);
  return info;
}
