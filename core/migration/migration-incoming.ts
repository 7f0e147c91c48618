// Incoming migration (migration/migration.c qmp_migrate_incoming, qemu_start_incoming_migration,
// process_incoming_migration_co and _bh; migration/socket.c, fd.c, exec.c; QEMU 7.2). The
// machine waits in inmigrate (-incoming URI or defer); bytes arriving on the channel are fed to
// the atomic loader as they come; once the stream has loaded it is applied at once, then a
// bottom half starts the guest (or leaves it paused, or in the state the source was in).
// Better than QEMU: a stream that fails to load changes nothing, and the destination does not
// exit: it reports QEMU's messages, stays in inmigrate with status failed, and accepts another
// migrate-incoming.
// Invariant: the loader is fed in arrival order and committed at most once.

import {
  G_IO_HUP, G_IO_IN, G_PRIORITY_DEFAULT, aioBhScheduleOneshot, gSourceDestroy, vfdClose, vfdRead,
  type VirtualFd,
} from '../loop/index.ts';
import { vfdAddWatch } from '../char/index.ts';
import { qapiEventSend, runstateCheck, runstateSet, vmStart } from '../system/index.ts';
import { strerror } from './errors.ts';
import { globalStateGetRunstate, globalStateReceived } from './global-state.ts';
import { loadvmCommit, loadvmCreate, loadvmFeed } from './loadvm.ts';
import {
  type IncomingMigration, type MigrationMachine, migrateSetState,
} from './migration-state.ts';
import { migrationFdLookup, migrationListen, migrationUriParse } from './migration-channel.ts';

/** Most bytes one dispatch feeds the loader before letting the loop run again. */
const INCOMING_READ_BYTES = 16 << 20;

/**
 * Start listening for (or reading) the incoming stream. Returns QEMU's error text or null.
 * @qemu migration/migration.c qemu_start_incoming_migration
 */
function qemuStartIncomingMigration(m: MigrationMachine, uri: string): string | null {
  const inc = m.migration.incoming;
  // QEMU 7.2 raises this event whatever the events capability says.
  qapiEventSend(m, 'MIGRATION', { status: 'setup' });
  const p = migrationUriParse(uri, `unknown migration protocol: ${uri}`);
  if ('error' in p) return p.error;
  inc.uri = uri;
  switch (p.kind) {
    case 'socket': {
      const l = migrationListen(m, p.addr, (fd) => {
        inc.socketAddresses = [l2.address()];
        inc.listener = null;
        migrationIncomingProcess(m, fd);
      }, (err) => migrationIncomingFail(m, [err]));
      if (typeof l === 'string') return l;
      const l2 = l;
      inc.listener = l;
      return null;
    }
    case 'file': {
      const io = m.migration.io?.();
      const r = io ? io.files.openIn(p.path) : { ok: false as const, error: 'no host I/O' };
      if (!r.ok) return r.error;
      migrationIncomingProcess(m, r.fd);
      return null;
    }
    case 'fd': {
      const fd = migrationFdLookup(m, p.name);
      if (typeof fd === 'string') return fd;
      migrationIncomingProcess(m, fd);
      return null;
    }
    case 'exec': {
      const ex = m.migration.exec;
      if (ex === null) return 'exec: migration is disabled (the host has not enabled it)';
      const r = ex.open(m, p.cmd, 'in');
      if (!r.ok) return r.error;
      migrationIncomingProcess(m, r.fd);
      return null;
    }
  }
}

/**
 * -incoming URI or defer at start-up: the machine enters inmigrate instead of running. Returns
 * QEMU's error text for a URI that cannot be used (QEMU then exits: "-incoming URI: error").
 */
export function migrationIncomingStartup(m: MigrationMachine, uri: string): string | null {
  runstateSet(m, 'inmigrate');
  m.migration.incoming.deferred = uri === 'defer';
  if (uri === 'defer') return null;
  return qmpMigrateIncoming(m, uri);
}

/** @qemu migration/migration.c qmp_migrate_incoming */
export function qmpMigrateIncoming(m: MigrationMachine, uri: string): string | null {
  const inc = m.migration.incoming;
  if (inc.started) return 'The incoming migration has already been started';
  if (!runstateCheck(m, 'inmigrate')) return "'-incoming' was not specified on the command line";
  const err = qemuStartIncomingMigration(m, uri);
  if (err !== null) return err;
  inc.started = true;
  return null;
}

/** The channel is up: load from it as bytes arrive. @qemu process_incoming_migration_co */
function migrationIncomingProcess(m: MigrationMachine, fd: VirtualFd): void {
  const inc = m.migration.incoming;
  inc.channel = fd;
  // The machine has not run since its reset (it waits in inmigrate), so RAM is loaded in place,
  // as QEMU loads it, rather than staged in a second copy: a failed load resets RAM instead
  // (migrationIncomingFail).
  inc.load = loadvmCreate(m.migration.sv, { ramInPlace: m.migration.ramReset !== null });
  migrateSetState(m, inc, inc.status, 'active');
  inc.watch = vfdAddWatch(m, fd, G_IO_IN | G_IO_HUP, 'migration-incoming', G_PRIORITY_DEFAULT,
    () => migrationIncomingRead(m, inc, fd));
}

function migrationIncomingRead(m: MigrationMachine, inc: IncomingMigration, fd: VirtualFd): boolean {
  const ls = inc.load!;
  let phase = ls.phase;
  for (let n = 0; n < INCOMING_READ_BYTES && fd.inboundBytes > 0;) {
    const chunk = vfdRead(fd, fd.inboundBytes);
    n += chunk.length;
    phase = loadvmFeed(ls, chunk);
    if (phase === 'loaded' || phase === 'failed') break;
  }
  if (phase !== 'loaded' && phase !== 'failed' && fd.inboundBytes === 0 && fd.hup) {
    phase = loadvmFeed(ls, null);
  }
  if (phase === 'failed') {
    const f = ls.failure!;
    migrationIncomingFail(m, [...f.messages, `load of migration failed: ${strerror(-f.ret)}`]);
    return false;
  }
  if (phase !== 'loaded') return true;
  inc.watch = null;
  loadvmCommit(ls);
  m.migration.postLoad();
  inc.bh = null;
  aioBhScheduleOneshot(m.loop.aio, 'process_incoming_migration_bh',
    () => processIncomingMigrationBh(m, inc));
  return false;
}

/**
 * The load failed: nothing of it stays (device state was staged; RAM loaded in place is reset);
 * report, close, wait for another migrate-incoming. (QEMU 7.2 exits here.)
 */
function migrationIncomingFail(m: MigrationMachine, messages: string[]): void {
  const inc = m.migration.incoming;
  if (inc.load !== null) m.migration.ramReset?.();
  for (const msg of messages) m.sys.report(msg);
  if (inc.status === 'active') migrateSetState(m, inc, 'active', 'failed');
  else inc.status = 'failed';
  migrationIncomingDestroy(m, inc);
  inc.started = false;
}

/** @qemu migration_incoming_state_destroy */
function migrationIncomingDestroy(m: MigrationMachine, inc: IncomingMigration): void {
  if (inc.watch !== null) gSourceDestroy(m.loop.sources, inc.watch);
  inc.watch = null;
  inc.listener?.close();
  inc.listener = null;
  if (inc.channel !== null) vfdClose(m.fdt, inc.channel);
  inc.channel = null;
  inc.load = null;
}

/**
 * Start the guest as the source ran it: running if no global state came or it said running
 * (unless -S), else the state it names. @qemu process_incoming_migration_bh
 */
function processIncomingMigrationBh(m: MigrationMachine, inc: IncomingMigration): void {
  const gs = m.migration.gs;
  const err = m.sys.block.activateAll();
  let autostart = m.sys.autostart;
  if (err !== null) {
    m.sys.report(err);
    autostart = false;
  }
  const received = globalStateReceived(gs) ? globalStateGetRunstate(gs) : null;
  if (received === null || received === 'running') {
    if (autostart) vmStart(m);
    else runstateSet(m, 'paused');
  } else {
    runstateSet(m, received);
  }
  migrateSetState(m, inc, 'active', 'completed');
  migrationIncomingDestroy(m, inc);
}
