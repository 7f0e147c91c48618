// The migration commands (QEMU 7.2 hmp-commands.hx / hmp-commands-info.hx with
// monitor/hmp-cmds.c's hmp_migrate*, hmp_info_migrate*, and qapi/migration.json's QMP
// commands): migrate, migrate_incoming, migrate_cancel, migrate_set_capability/-parameter,
// migrate_recover and migrate_pause, `info migrate`, `info migrate_capabilities` and
// `info migrate_parameters`, and their QMP counterparts. They act through MonitorMigration
// (monitor/migration-bindings.ts implements it over the kernel), with QEMU's texts.
// Invariant: HMP handlers call the QMP handlers, as QEMU's do.

import type { SocketAddress } from '../core/host/index.ts';
import type { MigrationInfo, MigrationRamInfo, MigrationStateHash } from '../core/migration/index.ts';
import { QEMU_CLOCK_REALTIME, qemuClockGetNs, timerDel, timerModNs, timerNew } from '../core/loop/index.ts';
import type { Monitor, MonitorSet } from './monitor.ts';
import { errorReport, monitorPrintf, monitorResume, monitorSuspend } from './monitor.ts';
import { type HmpArgs, type HmpCommand, hmpRegisterCommands } from './hmp-commands.ts';
import { hmpHandleError } from './hmp-cmds.ts';
import { strtoszMiB } from './hmp-args.ts';
import { type QmpCommand, type QmpResult, QMP_OK, qmpFail, qmpRegisterCommands } from './qmp-dispatch.ts';
import { T_BOOL, T_STR, argStr } from './qapi-visit.ts';
import { type QDict, type QObject, isQDict, isQNum, qdictEntries, qdictFrom, qnumDouble, qnumInt, utf8ToBytes } from './qobject.ts';

/** What the migration commands need from the machine. */
export interface MonitorMigration {
  /** @qemu qmp_migrate: null when started, else QEMU's error text. */
  migrate(uri: string, o: { blk: boolean; inc: boolean; resume: boolean }): string | null;
  /** @qemu qmp_migrate_incoming */
  migrateIncoming(uri: string): string | null;
  /** @qemu qmp_migrate_cancel */
  migrateCancel(): void;
  /** @qemu qmp_query_migrate */
  queryMigrate(): MigrationInfo;
  /** MigrationCapabilityStatus list, in enum order. */
  capabilities(): Array<[string, boolean]>;
  setCapabilities(changes: Array<[string, boolean]>): string | null;
  /** MigrationParameters members in schema order with their values. */
  parameters(): Array<[string, number | boolean | string]>;
  /** Only max-bandwidth and downtime-limit are applied; others are refused. */
  setParameters(values: Array<[string, bigint]>): string | null;
  /** `info migrate_parameters` line of one parameter. */
  parameterLine(name: string, v: number | boolean | string): string;
  /** Names in `info migrate_parameters` order. */
  hmpParameterOrder: readonly string[];
  /** Parameters that migrate-set-parameters may carry (all of MigrateSetParameters). */
  parameterNames: readonly string[];
  /** detvm: the guest-visible state fingerprint (core/migration/migration-hash.ts). */
  stateHash?(): MigrationStateHash;
}

const MIGRATE_HELP = 'migrate to URI (using -d to not wait for completion)\n\t\t\t -b for migration without'
  + ' shared storage with full copy of disk\n\t\t\t -i for migration without shared storage with'
  + ' incremental copy of disk (base image shared between src and destination)\n\t\t\t -r to resume'
  + ' a paused migration';

const RECOVER_ERROR = 'Migrate recover can only be run when postcopy is paused.';
const PAUSE_ERROR = 'migrate-pause is currently only supported during postcopy-active state';

function str(a: HmpArgs, k: string): string {
  const v = a.get(k);
  return typeof v === 'string' ? v : '';
}

function flag(a: HmpArgs, k: string): boolean {
  return a.get(k) === true;
}

/** What a socket address looks like in `info migrate`. @qemu socket_uri */
function socketUri(a: SocketAddress): string {
  if (a.type === 'inet') return `tcp:${a.host}:${a.port}`;
  if (a.type === 'unix') return `unix:${a.path}`;
  return `fd:${a.str}`;
}

/** The RAM lines of `info migrate`. */
function ramLines(r: MigrationRamInfo): string {
  const kb = (n: number): number => Math.floor(n / 1024);
  let out = `transferred ram: ${kb(r.transferred)} kbytes\n`
    + `throughput: ${r.mbps.toFixed(2)} mbps\n`
    + `remaining ram: ${kb(r.remaining ?? 0)} kbytes\n`
    + `total ram: ${kb(r.total)} kbytes\n`
    + `duplicate: ${r.duplicate} pages\n`
    + `skipped: ${r.skipped} pages\n`
    + `normal: ${r.normal} pages\n`
    + `normal bytes: ${kb(r.normalBytes)} kbytes\n`
    + `dirty sync count: ${r.dirtySyncCount}\n`
    + `page size: ${kb(r.pageSize)} kbytes\n`
    + `multifd bytes: ${kb(r.multifdBytes)} kbytes\n`
    + `pages-per-second: ${r.pagesPerSecond}\n`;
  if (r.dirtyPagesRate) out += `dirty pages rate: ${r.dirtyPagesRate} pages\n`;
  if (r.postcopyRequests) out += `postcopy request count: ${r.postcopyRequests}\n`;
  if (r.precopyBytes) out += `precopy ram: ${kb(r.precopyBytes)} kbytes\n`;
  if (r.downtimeBytes) out += `downtime ram: ${kb(r.downtimeBytes)} kbytes\n`;
  if (r.postcopyBytes) out += `postcopy ram: ${kb(r.postcopyBytes)} kbytes\n`;
  return out;
}

/** `info migrate`. @qemu monitor/hmp-cmds.c hmp_info_migrate (7.2) */
export function hmpInfoMigrateText(info: MigrationInfo): string {
  let out = 'globals:\nstore-global-state: on\nonly-migratable: off\nsend-configuration: on\n'
    + 'send-section-footer: on\ndecompress-error-check: on\nclear-bitmap-shift: 18\n';
  if (info.blockedReasons) {
    out += 'Outgoing migration blocked:\n';
    for (const r of info.blockedReasons) out += `  ${r}\n`;
  }
  if (info.status !== undefined) {
    out += `Migration status: ${info.status}`;
    out += info.status === 'failed' && info.errorDesc !== undefined ? ` (${info.errorDesc})\n` : '\n';
    out += `total time: ${info.totalTime ?? 0} ms\n`;
    if (info.expectedDowntime !== undefined) out += `expected downtime: ${info.expectedDowntime} ms\n`;
    if (info.downtime !== undefined) out += `downtime: ${info.downtime} ms\n`;
    if (info.setupTime !== undefined) out += `setup: ${info.setupTime} ms\n`;
  }
  if (info.ram) out += ramLines(info.ram);
  if (info.socketAddress) {
    out += 'socket address: [\n';
    for (const a of info.socketAddress) out += `\t${socketUri(a)}\n`;
    out += ']\n';
  }
  return out;
}

function socketAddressQObject(a: SocketAddress): QObject {
  if (a.type === 'inet') {
    return qdictFrom([['type', 'inet'], ['host', utf8ToBytes(a.host)], ['port', utf8ToBytes(a.port)]]);
  }
  if (a.type === 'unix') return qdictFrom([['type', 'unix'], ['path', utf8ToBytes(a.path)]]);
  return qdictFrom([['type', 'fd'], ['str', utf8ToBytes(a.str)]]);
}

/** MigrationStats in schema order. */
function ramQObject(r: MigrationRamInfo): QDict {
  const pairs: [string, QObject][] = [['transferred', qnumInt(r.transferred)]];
  if (r.remaining !== null) pairs.push(['remaining', qnumInt(r.remaining)]);
  pairs.push(
    ['total', qnumInt(r.total)], ['duplicate', qnumInt(r.duplicate)], ['skipped', qnumInt(r.skipped)],
    ['normal', qnumInt(r.normal)], ['normal-bytes', qnumInt(r.normalBytes)],
    ['dirty-pages-rate', qnumInt(r.dirtyPagesRate)], ['mbps', qnumDouble(r.mbps)],
    ['dirty-sync-count', qnumInt(r.dirtySyncCount)], ['postcopy-requests', qnumInt(r.postcopyRequests)],
    ['page-size', qnumInt(r.pageSize)], ['multifd-bytes', qnumInt(r.multifdBytes)],
    ['pages-per-second', qnumInt(r.pagesPerSecond)], ['precopy-bytes', qnumInt(r.precopyBytes)],
    ['downtime-bytes', qnumInt(r.downtimeBytes)], ['postcopy-bytes', qnumInt(r.postcopyBytes)],
    ['dirty-sync-missed-zero-copy', qnumInt(r.dirtySyncMissedZeroCopy)],
  );
  return qdictFrom(pairs);
}

/** MigrationInfo in schema order (absent members left out). */
export function migrationInfoQObject(info: MigrationInfo): QDict {
  const pairs: [string, QObject][] = [];
  if (info.status !== undefined) pairs.push(['status', info.status]);
  if (info.ram) pairs.push(['ram', ramQObject(info.ram)]);
  if (info.totalTime !== undefined) pairs.push(['total-time', qnumInt(info.totalTime)]);
  if (info.expectedDowntime !== undefined) pairs.push(['expected-downtime', qnumInt(info.expectedDowntime)]);
  if (info.downtime !== undefined) pairs.push(['downtime', qnumInt(info.downtime)]);
  if (info.setupTime !== undefined) pairs.push(['setup-time', qnumInt(info.setupTime)]);
  if (info.errorDesc !== undefined) pairs.push(['error-desc', utf8ToBytes(info.errorDesc)]);
  if (info.blockedReasons) pairs.push(['blocked-reasons', info.blockedReasons.map(utf8ToBytes)]);
  if (info.socketAddress) pairs.push(['socket-address', info.socketAddress.map(socketAddressQObject)]);
  return qdictFrom(pairs);
}

/**
 * Status poll of a synchronous HMP migrate: every second while setup or active; at the end
 * report the error (no current monitor: stderr) and give the monitor its prompt back.
 * @qemu monitor/hmp-cmds.c hmp_migrate_status_cb
 */
function hmpMigrateStatusWait(mons: MonitorSet, mig: MonitorMigration, mon: Monitor): void {
  const m = mons.m;
  const now = (): number => qemuClockGetNs(m.clocks, QEMU_CLOCK_REALTIME);
  const timer = timerNew(m.loop.tlg, QEMU_CLOCK_REALTIME, 1, 'hmp_migrate_status_cb', () => {
    const info = mig.queryMigrate();
    if (info.status === undefined || info.status === 'active' || info.status === 'setup') {
      timerModNs(timer, now() + 1000 * 1_000_000);
      return;
    }
    if (info.errorDesc !== undefined) errorReport(mons, info.errorDesc);
    monitorResume(mons, mon);
    timerDel(timer);
  });
  timerModNs(timer, now());
}

/** @qemu monitor/hmp-cmds.c hmp_migrate */
function hmpMigrate(mons: MonitorSet, mig: MonitorMigration, mon: Monitor, a: HmpArgs): void {
  const err = mig.migrate(str(a, 'uri'), { blk: flag(a, 'blk'), inc: flag(a, 'inc'), resume: flag(a, 'resume') });
  if (err !== null) {
    hmpHandleError(mons, { ok: false, desc: err });
    return;
  }
  if (flag(a, 'detach')) return;
  if (monitorSuspend(mons, mon) < 0) {
    monitorPrintf(mons, mon, 'terminal does not allow synchronous migration, continuing detached\n');
    return;
  }
  hmpMigrateStatusWait(mons, mig, mon);
}

const SIZE_HINT = 'Optional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\n'
  + 'and exabytes, respectively.';

/** qemu_strtosz: bytes by default. */
function strtosz(s: string): bigint | null {
  const m = /^\s*(\d+(?:\.\d*)?)([bBkKmMgGtTpPeE]?)$/.exec(s);
  if (!m) return null;
  const unit = m[2] ? 'bkmgtpe'.indexOf(m[2].toLowerCase()) : 0;
  const [ip, fp = ''] = m[1]!.split('.');
  const denom = 10n ** BigInt(fp.length);
  const v = ((BigInt(ip!) * denom + BigInt(fp || '0')) << BigInt(10 * unit)) / denom;
  return v < 1n << 64n ? v : null;
}

/** @qemu monitor/hmp-cmds.c hmp_migrate_set_parameter (7.2) */
function hmpMigrateSetParameter(mons: MonitorSet, mig: MonitorMigration, a: HmpArgs): void {
  const param = str(a, 'parameter');
  const value = str(a, 'value');
  let err: string | null;
  if (!mig.parameterNames.includes(param)) {
    err = `invalid parameter value: ${param}`;
  } else if (param === 'max-bandwidth') {
    const r = strtoszMiB(value, 0);
    err = r === null || r.end !== value.length ? `Invalid size ${value}` : mig.setParameters([[param, r.value]]);
  } else if (param === 'downtime-limit') {
    const v = strtosz(value);
    err = v === null ? `Parameter '${param}' expects a non-negative number below 2^64\n${SIZE_HINT}`
      : mig.setParameters([[param, v]]);
  } else {
    err = mig.setParameters([[param, 0n]]);
  }
  if (err !== null) hmpHandleError(mons, { ok: false, desc: err });
}

/** @qemu monitor/hmp-cmds.c hmp_migrate_set_capability */
function hmpMigrateSetCapability(mons: MonitorSet, mig: MonitorMigration, a: HmpArgs): void {
  const cap = str(a, 'capability');
  const err = mig.capabilities().some(([n]) => n === cap)
    ? mig.setCapabilities([[cap, a.get('state') === true]])
    : `invalid parameter value: ${cap}`;
  if (err !== null) hmpHandleError(mons, { ok: false, desc: err });
}

function hmpCommands(mig: MonitorMigration): HmpCommand[] {
  return [
    { name: 'migrate', argsType: 'detach:-d,blk:-b,inc:-i,resume:-r,uri:s', params: '[-d] [-b] [-i] [-r] uri',
      help: MIGRATE_HELP, cmd: (mons, mon, a) => hmpMigrate(mons, mig, mon, a) },
    { name: 'migrate_cancel', argsType: '', params: '', help: 'cancel the current VM migration',
      cmd: () => mig.migrateCancel() },
    { name: 'migrate_incoming', argsType: 'uri:s', params: 'uri',
      help: 'Continue an incoming migration from an -incoming defer',
      cmd: (mons, _mon, a) => {
        const err = mig.migrateIncoming(str(a, 'uri'));
        if (err !== null) hmpHandleError(mons, { ok: false, desc: err });
      } },
    { name: 'migrate_recover', argsType: 'uri:s', params: 'uri',
      help: 'Continue a paused incoming postcopy migration',
      cmd: (mons) => void hmpHandleError(mons, { ok: false, desc: RECOVER_ERROR }) },
    { name: 'migrate_pause', argsType: '', params: '', help: 'Pause an ongoing migration (postcopy-only)',
      cmd: (mons) => void hmpHandleError(mons, { ok: false, desc: PAUSE_ERROR }) },
    { name: 'migrate_set_capability', argsType: 'capability:s,state:b', params: 'capability state',
      help: 'Enable/Disable the usage of a capability for migration',
      cmd: (mons, _mon, a) => hmpMigrateSetCapability(mons, mig, a) },
    { name: 'migrate_set_parameter', argsType: 'parameter:s,value:s', params: 'parameter value',
      help: 'Set the parameter for migration', cmd: (mons, _mon, a) => hmpMigrateSetParameter(mons, mig, a) },
  ];
}

function hmpInfoCommands(mig: MonitorMigration): HmpCommand[] {
  return [
    { name: 'migrate', argsType: '', params: '', help: 'show migration status',
      cmd: (mons, mon) => void monitorPrintf(mons, mon, hmpInfoMigrateText(mig.queryMigrate())) },
    { name: 'migrate_capabilities', argsType: '', params: '', help: 'show current migration capabilities',
      cmd: (mons, mon) => {
        for (const [n, on] of mig.capabilities()) monitorPrintf(mons, mon, `${n}: ${on ? 'on' : 'off'}\n`);
      } },
    { name: 'migrate_parameters', argsType: '', params: '', help: 'show current migration parameters',
      cmd: (mons, mon) => {
        const values = new Map(mig.parameters());
        for (const n of mig.hmpParameterOrder) {
          monitorPrintf(mons, mon, mig.parameterLine(n, values.get(n) ?? 0) + '\n');
        }
      } },
  ];
}

/** One MigrationCapabilityStatus of migrate-set-capabilities, checked as QEMU's visitor does. */
function capabilityItem(
  o: QObject, i: number, known: Set<string>,
): [string, boolean] | string {
  const at = `capabilities[${i}]`;
  if (!isQDict(o)) return `Invalid parameter type for '${at}', expected: object`;
  const cap = o.map.get('capability');
  if (cap === undefined) return `Parameter '${at}.capability' is missing`;
  if (typeof cap !== 'string') return `Invalid parameter type for '${at}.capability', expected: string`;
  if (!known.has(cap)) return `Parameter 'capability' does not accept value '${cap}'`;
  const state = o.map.get('state');
  if (state === undefined) return `Parameter '${at}.state' is missing`;
  if (typeof state !== 'boolean') return `Invalid parameter type for '${at}.state', expected: boolean`;
  for (const [k] of qdictEntries(o)) {
    if (k !== 'capability' && k !== 'state') return `Parameter '${at}.${k}' is unexpected`;
  }
  return [cap, state];
}

/** @qemu qmp_migrate_set_capabilities */
function qmpMigrateSetCapabilities(mig: MonitorMigration, list: QObject): QmpResult {
  if (!Array.isArray(list)) return qmpFail("Invalid parameter type for 'capabilities', expected: array");
  const known = new Set(mig.capabilities().map(([n]) => n));
  const changes: Array<[string, boolean]> = [];
  for (let i = 0; i < list.length; i++) {
    const r = capabilityItem(list[i]!, i, known);
    if (typeof r === 'string') return qmpFail(r);
    changes.push(r);
  }
  const err = mig.setCapabilities(changes);
  return err === null ? QMP_OK : qmpFail(err);
}

/** @qemu qmp_migrate_set_parameters: the supported members as uint64. */
function qmpMigrateSetParameters(mig: MonitorMigration, args: Map<string, QObject>): QmpResult {
  const values: Array<[string, bigint]> = [];
  for (const name of mig.parameterNames) {
    const v = args.get(name);
    if (v === undefined) continue;
    if (name !== 'max-bandwidth' && name !== 'downtime-limit') {
      values.push([name, 0n]);
      continue;
    }
    if (!isQNum(v) || v.kind === 'double') {
      return qmpFail(`Invalid parameter type for '${name}', expected: ${name === 'max-bandwidth' ? 'size' : 'uint64'}`);
    }
    values.push([name, BigInt.asUintN(64, v.value)]);
  }
  const err = mig.setParameters(values);
  return err === null ? QMP_OK : qmpFail(err);
}

function paramQObject(v: number | boolean | string): QObject {
  if (typeof v === 'number') return qnumInt(v);
  if (typeof v === 'boolean') return v;
  return utf8ToBytes(v);
}

function qmpCommands(mig: MonitorMigration): QmpCommand[] {
  const ANY = { kind: 'any' } as const;
  return [
    { name: 'migrate', args: [
      { name: 'uri', type: T_STR }, { name: 'blk', type: T_BOOL, optional: true },
      { name: 'inc', type: T_BOOL, optional: true }, { name: 'detach', type: T_BOOL, optional: true },
      { name: 'resume', type: T_BOOL, optional: true },
    ], fn: (_mons, _mon, a) => {
      const err = mig.migrate(argStr(a, 'uri')!, {
        blk: a.get('blk') === true, inc: a.get('inc') === true, resume: a.get('resume') === true,
      });
      return err === null ? QMP_OK : qmpFail(err);
    } },
    { name: 'migrate-incoming', args: [{ name: 'uri', type: T_STR }], fn: (_mons, _mon, a) => {
      const err = mig.migrateIncoming(argStr(a, 'uri')!);
      return err === null ? QMP_OK : qmpFail(err);
    } },
    { name: 'migrate_cancel', args: [], fn: () => {
      mig.migrateCancel();
      return QMP_OK;
    } },
    { name: 'query-migrate', args: [], fn: () => ({ ok: true, value: migrationInfoQObject(mig.queryMigrate()) }) },
    { name: 'migrate-set-capabilities', args: [{ name: 'capabilities', type: ANY }],
      fn: (_mons, _mon, a) => qmpMigrateSetCapabilities(mig, a.get('capabilities')!) },
    { name: 'query-migrate-capabilities', args: [], fn: () => ({
      ok: true,
      value: mig.capabilities().map(([n, on]) => qdictFrom([['capability', n], ['state', on]])),
    }) },
    { name: 'migrate-set-parameters', args: mig.parameterNames.map((name) => ({ name, type: ANY, optional: true })),
      fn: (_mons, _mon, a) => qmpMigrateSetParameters(mig, a) },
    { name: 'query-migrate-parameters', args: [], fn: () => ({
      ok: true, value: qdictFrom(mig.parameters().map(([n, v]): [string, QObject] => [n, paramQObject(v)])),
    }) },
    { name: 'migrate-recover', args: [{ name: 'uri', type: T_STR }], allowOob: true,
      fn: () => qmpFail(RECOVER_ERROR) },
    { name: 'migrate-pause', args: [], allowOob: true, fn: () => qmpFail(PAUSE_ERROR) },
    // detvm only (x- as QEMU marks unstable commands): the guest-visible state fingerprint, to
    // compare a migrated machine with an unmigrated one (test/scenarios/migration-process.test.ts).
    { name: 'x-detvm-query-state-hash', args: [], fn: () => {
      if (mig.stateHash === undefined) return qmpFail('this machine has no state fingerprint');
      const s = mig.stateHash();
      return {
        ok: true,
        value: qdictFrom([['hash', s.hash], ['icount', qnumInt(s.icount)], ['virtual-ns', qnumInt(s.virtualNs)],
          ['idle', s.idle]]),
      };
    } },
  ];
}

/** Register the migration commands on a monitor set. */
export function migrationRegisterCommands(mons: MonitorSet, mig: MonitorMigration): void {
  hmpRegisterCommands(mons, 'main', hmpCommands(mig));
  hmpRegisterCommands(mons, 'info', hmpInfoCommands(mig));
  qmpRegisterCommands(mons, qmpCommands(mig));
}
