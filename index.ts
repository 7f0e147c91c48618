// detvm's package entry and composition root (DESIGN.md §2): turns a configuration (the library's
// object, or the command line parsed by bin/) into a virt machine with its chardevs and monitors,
// in QEMU 7.2's order (softmmu/vl.c): -chardev backends, monitor chardevs, -serial, -mon
// monitors, machine init with device realize, resume_mux_open, then vm_start unless -S.

import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { EventEmitter } from 'eventemitter3';
import {
  type RunLimits, type LoopMachine, type ClockMode, type HostClockSource, type QapiEvent, loopStep, runFor,
  runUntil, hostWallClock,
} from './core/loop/index.ts';
import {
  type TraceRecord, type TraceLevel, traceHash, exportJsonLines, exportCallTree, exportChromeTrace,
} from './core/trace/index.ts';
import { notifierListAdd } from './core/util/index.ts';
import { type VirtMachine, virtMachineCreate, virtMachineDone } from './core/machine.ts';
import { vmShutdown, qemuSystemExitRequest, qemuSystemKilled } from './core/system/index.ts';
import type { Chardev, ChrReport } from './core/char/index.ts';
import { charState, chrReportFormat } from './core/char/index.ts';
import { type ChardevIo, type HostExecProvider, hostBlockFileProviderCreate } from './core/host/index.ts';
import { type BlockFileProvider, bdrvCloseAll, blockSetIo } from './core/block/index.ts';
import { jobCancelSyncAll, loadSnapshot, snapshotCompletionTags, snapshotSetUtcOffset } from './core/snapshot/index.ts';
import { virtDeviceAdd, virtDriveAdd } from './core/virt-virtio.ts';
import {
  type QemuOptsList, qemuChardevOptsList, qemuChardevOptsParse, qemuChrNewFromOpts, qemuChrNew, chardevSetIo,
  resumeMuxOpen, suspendMuxOpen, qemuOptsParseNoisily, qemuOptGet, qemuOptGetBool, libraryChardevCreate,
  libraryChardevSend, qemuChrCleanup, chardevIo,
} from './chardev/index.ts';
import {
  type MigrationFailure, migrationIncomingStartup, migrationLoadVm, migrationSaveVmBytes,
} from './core/migration/index.ts';
import {
  type MonitorSet, type MonitorHostHooks, type QmpClient, monitorsCreate, monitorInitHmp, monitorInitQmp,
  virtMonitorMachine, qmpClientCreate, QmpCommandError, registerSnapshotCommands, snapshotMonitorOps, migrationRegisterCommands, migrationMonitorBindings,
} from './monitor/index.ts';
import { type ReplayHandle, replayRegisterCommands, replayHandlePlay, replayHandleRecord } from './monitor/index.ts';
import {
  type ReplaySession, type ReplayHeader, ReplayRefusedError, replaySessionRecord, replaySessionPlay, replaySessionClock,
  replaySessionAttach, replaySessionHostCall, replayImageHash, replayRecordReady, replayRecordFinish,
  replayRecordChrSend, replayRecordSignal, replayDebuggerCreate,
} from './core/replay/index.ts';
import { strerror, errnoCode } from './core/host/index.ts';
import { DEFAULT_HOST_BASE_SEC } from './core/loop/index.ts';

export type { RunLimits, TraceRecord, TraceLevel, ReplayHandle, ReplayHeader };
export { QmpCommandError, ReplayRefusedError };

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8')) as { version: string };
/** detvm's version (package.json). */
export const DETVM_VERSION: string = pkg.version;
/** The QEMU package string detvm reports ("detvm <version>"). */
export const DETVM_PACKAGE = `detvm ${DETVM_VERSION}`;

/** Instructions per vCPU turn in live mode (a few milliseconds of interpretation). */
export const LIVE_MAX_SLICE_INSNS = 500_000;

/** A -mon option: a monitor on an existing chardev. */
export interface MonConfig {
  chardev: string;
  mode?: 'readline' | 'control';
  pretty?: boolean;
}

/** Configuration of a machine: the library's equivalent of the command line. */
export interface MachineConfig {
  /** -smp: number of harts (1..8, default 1). */
  smp?: number;
  /** -m: RAM in bytes or a QEMU size string ("256M"); default 128 MiB. */
  memory?: number | string;
  /** -kernel: a file path, or bytes with a name for messages. */
  kernel?: string | { name: string; bytes: Uint8Array } | null;
  /**
   * -serial: a chardev spec ("mon:stdio", "tcp:127.0.0.1:4444,server=on,wait=off", "null",
   * "chardev:ID"), `'capture'` (the library default: output kept in `vm.console`), or null.
   */
  serial?: string | null;
  /** -chardev arguments ("socket,id=mon0,host=127.0.0.1,port=4444,server=on,wait=off"). */
  chardevs?: string[];
  /** -monitor specs (HMP on a new chardev). */
  monitors?: string[];
  /** -qmp specs (QMP on a new chardev); `qmpPretty` for -qmp-pretty. */
  qmp?: string[];
  qmpPretty?: string[];
  /** -mon options (string as on the command line, or an object). */
  mons?: Array<string | MonConfig>;
  /** -S: stay in prelaunch until `cont`. */
  startPaused?: boolean;
  /** -no-shutdown / -action shutdown=pause. */
  noShutdown?: boolean;
  /** -action reboot=shutdown. */
  rebootShutdown?: boolean;
  /** -name */
  name?: string | null;
  /** -icount shift (default 0). */
  icountShift?: number;
  /** Seed of the machine's PRNG (default 0). */
  seed?: number;
  /** Trace level: 0 off, 1 control plane, 2 devices too (default 0). */
  trace?: TraceLevel;
  /** Keep trace records in memory (default: when tracing). */
  retainTrace?: boolean;
  /** Wall-clock second at simulated time 0 (virtual mode; -rtc base). */
  rtcBaseSec?: number;
  /** 'virtual' (default): simulated time; 'live': real clocks and host I/O (bin/). */
  clock?: ClockMode;
  /**
   * Live mode: the host clocks and the host I/O (sockets, stdio); `exec`, when given, runs
   * `exec:` migration URIs (detvm -migrate-exec on; core/host/host-exec.ts).
   */
  host?: { clock: HostClockSource; io: (m: LoopMachine) => ChardevIo; exec?: (m: LoopMachine) => HostExecProvider };
  /** Where messages for the user go (error_report); default: kept in `vm.reports`. */
  report?: (line: string) => void;
  /** Host hooks for the monitor (stdout/stderr, directory listing for completion). */
  monitorHost?: MonitorHostHooks;
  /** -icount rr=record,rrfile=F: log every input from outside the configuration (core/replay). */
  record?: RecordConfig;
  /** -icount rr=replay,rrfile=F: replay a log; the configuration must be the recorded one. */
  replay?: ReplayConfig;
  /** -incoming URI|defer: wait (in inmigrate) for an incoming migration instead of starting. */
  incoming?: string;
  /** -drive options ("if=none,file=d.qcow2,format=qcow2,id=d0,node-name=disk0"), in order. */
  drives?: string[];
  /** -device options; detvm has virtio-blk-device ("virtio-blk-device,drive=d0"). */
  devices?: string[];
  /** -loadvm TAG: load this snapshot before the VM starts. */
  loadvm?: string;
  /** How drives reach image files (default: the host file system; tests pass an in-memory one). */
  blockFiles?: BlockFileProvider;
  /** The host's local time, seconds east of UTC (snapshot names and dates; default 0 = UTC). */
  utcOffsetSec?: number;
}

/** A failed vm.save() or vm.load(): QEMU's messages, oldest first, and its negative errno. */
export class MigrationError extends Error {
  override name = 'MigrationError';
  constructor(readonly failure: MigrationFailure) {
    super(failure.messages.join('\n'));
  }
}

/** Recording options (-icount rr=record). */
export interface RecordConfig {
  /** The log file, written as the run goes; omitted: the log is kept in memory (vm.replay.log()). */
  file?: string;
  /** The name info replay shows (default: `file`, else "memory"). */
  name?: string;
  /** -icount rrsnapshot=NAME: kept in the header (a detvm log starts at machine creation). */
  snapshot?: string;
}

/** Replay options (-icount rr=replay). */
export interface ReplayConfig {
  /** The log: its bytes, or a file name. */
  log: Uint8Array | string;
  /** The name info replay shows (default: the file name, else "memory"). */
  name?: string;
  /** Replay a log another detvm version wrote (exactness is then not promised). */
  allowOtherVersion?: boolean;
  /** Automatic snapshots: at least every this many instructions (default 20M) or iterations (2000). */
  snapshotIntervalInsns?: number;
  snapshotIntervalIterations?: number;
  /** Memory the automatic snapshots may use (default 256 MiB). */
  snapshotBudgetBytes?: number;
}

/** An error in the configuration, with QEMU's text where QEMU has one. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The trace of a machine: its running hash, retained records and exporters. */
export interface TraceHandle {
  /** Running hash over every record so far (16 hex digits). */
  hash(): string;
  /** Retained records. */
  records(): readonly TraceRecord[];
  /** Canonical JSON lines of the retained records. */
  jsonLines(): string;
  /** Indented call tree of the retained records. */
  callTree(): string;
  /** Chrome trace JSON (Perfetto) of the retained records. */
  chrome(): string;
}

/** A QAPI event as the library reports it. */
export interface MachineEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

/** The events of `vm.events` (an eventemitter3 EventEmitter): `vm.events.on('event', (e) => ...)`. */
export interface MachineEvents {
  /** A QAPI event (STOP, RESUME, SHUTDOWN, RESET...), as QMP clients would see it. */
  event: (e: MachineEvent) => void;
  /** Bytes the guest wrote to a 'capture' serial. */
  console: (text: string) => void;
}

/** A detvm machine as the library sees it. */
export interface DetvmMachine {
  /** The kernel state (for tests and advanced embedding). */
  readonly kernel: VirtMachine;
  /** The monitors. */
  readonly monitors: MonitorSet;
  /** QAPI events and console output. */
  readonly events: EventEmitter<MachineEvents>;
  /** What the guest printed on a 'capture' serial. */
  readonly console: { text(): string; input(text: string | Uint8Array): void };
  /** Messages for the user (error_report) when no `report` hook was given. */
  readonly reports: readonly string[];
  /** Exactly one main-loop iteration (and one vCPU turn); returns its trace records. */
  step(): TraceRecord[];
  /** Run for `ns` nanoseconds of virtual time. */
  runFor(ns: number, limits?: RunLimits): void;
  /** Run until `pred()` holds; throws LoopLimitError when a limit is hit first. */
  runUntil(pred: () => boolean, limits?: RunLimits): void;
  /** Run for `until` ns, or until `until()` holds. */
  run(opts: { until: number | (() => boolean) } & RunLimits): void;
  /** Run an HMP command line (as human-monitor-command does) and return its output. */
  hmp(line: string): string;
  /** Run a QMP command; returns its `return` value or throws QmpCommandError. */
  qmp(command: string, args?: Record<string, unknown>): unknown;
  /** Exit status once the main loop has ended (quit, guest power-off), else null. */
  exitStatus(): number | null;
  /**
   * The whole VM as a QEMU 7.2 migration stream, saved as savevm does (a running VM is stopped
   * for the save and resumed). Throws MigrationError (e.g. during a migration).
   */
  save(): Uint8Array;
  /**
   * Load a stream made by save() (or by a migration to a file) into this machine, atomically:
   * an invalid stream changes nothing and throws MigrationError with QEMU's messages (the VM then
   * stays in restore-vm, as after a failed loadvm). A running VM keeps running.
   */
  load(bytes: Uint8Array): void;
  /** Record/replay of this machine (config.record / config.replay), else null. */
  readonly replay: ReplayHandle | null;
  /**
   * A host signal (SIGINT 2, SIGHUP 1, SIGTERM 15) ends the VM as QEMU's termsig handler does
   * (qemu_system_killed); a recording logs it. `pid` 0: from the terminal.
   */
  signal(signal: number, pid?: number): void;
  /**
   * Tear down as QEMU does after its main loop (qemu_cleanup): stop the VM without a STOP event,
   * then close every chardev (clients see their connections close). Idempotent.
   */
  close(): void;
  /** The trace: running hash, retained records (with `trace` > 0) and the exporters. */
  readonly trace: TraceHandle;
}

/** Parse a QEMU size ("128M", "1G", "4096"); bytes, or an error text. */
export function parseSize(s: string | number): number | string {
  if (typeof s === 'number') return s;
  const m = /^(\d+(?:\.\d+)?)([kKmMgGtT]?)[bB]?$/.exec(s.trim());
  if (!m) return `Parameter 'size' expects a non-negative number below 2^64\nOptional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively.`;
  const mult: Record<string, number> = { '': 1024 * 1024, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  // QEMU's -m takes MiB when no suffix is given.
  return Math.round(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

function loadKernelBytes(k: MachineConfig['kernel']): { name: string; bytes: Uint8Array } | null {
  if (k === undefined || k === null) return null;
  if (typeof k !== 'string') return k;
  try {
    return { name: k, bytes: readFileSync(k) };
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new ConfigError(code === 'ENOENT' ? `could not load kernel '${k}'` : `could not load kernel '${k}': ${String(e)}`);
  }
}

function monOpts(spec: string | MonConfig): MonConfig {
  if (typeof spec !== 'string') return spec;
  const list: QemuOptsList = {
    name: 'mon', impliedOptName: 'chardev', mergeLists: false, head: [],
    desc: [{ name: 'mode', type: 'string' }, { name: 'chardev', type: 'string' }, { name: 'pretty', type: 'bool' }],
  } as QemuOptsList;
  const r = qemuOptsParseNoisily(list, spec, true);
  if (!r.ok) throw new ConfigError(r.error);
  const chardev = qemuOptGet(r.value, 'chardev');
  if (!chardev) throw new ConfigError('-mon: No chardev option given');
  const mode = qemuOptGet(r.value, 'mode') ?? 'readline';
  if (mode !== 'readline' && mode !== 'control') throw new ConfigError(`unknown monitor mode "${mode}"`);
  return { chardev, mode, pretty: qemuOptGetBool(r.value, 'pretty', false) };
}

/** Build the chardevs and monitors of `m` in QEMU's order; returns the serial chardev. */
function setupChardevs(m: VirtMachine, cfg: MachineConfig, mons: MonitorSet, report: (r: ChrReport) => void): Chardev | null {
  const list = qemuChardevOptsList();
  // Errors carry the option's location, as QEMU's loc_set_cmdline does ("-serial foo: ...").
  for (const spec of cfg.chardevs ?? []) {
    const p = qemuChardevOptsParse(list, spec);
    if (!p.ok) throw new ConfigError(`-chardev ${spec}: ${p.error}`);
    for (const w of p.warnings) report(w);
    const r = qemuChrNewFromOpts(m, p.value);
    if (!r.ok) throw new ConfigError(`-chardev ${spec}: ${r.error}`);
  }
  const monitorSpecs: Array<{ opt: string; chardevSpec: string; mode: 'readline' | 'control'; pretty: boolean }> = [
    ...(cfg.monitors ?? []).map((s) => ({ opt: '-monitor', chardevSpec: s, mode: 'readline' as const, pretty: false })),
    ...(cfg.qmp ?? []).map((s) => ({ opt: '-qmp', chardevSpec: s, mode: 'control' as const, pretty: false })),
    ...(cfg.qmpPretty ?? []).map((s) => ({ opt: '-qmp-pretty', chardevSpec: s, mode: 'control' as const, pretty: true })),
  ];
  const monitorChardevs: Array<{ chr: Chardev; mode: 'readline' | 'control'; pretty: boolean }> = [];
  monitorSpecs.forEach((spec, i) => {
    const r = qemuChrNew(m, list, `compat_monitor${i}`, spec.chardevSpec, true);
    const loc = `${spec.opt} ${spec.chardevSpec}`;
    if (!r.ok) {
      // monitor_parse: a spec qemu_chr_parse_compat rejects is a "parse error".
      if (r.report && !/is not a valid char driver$/.test(r.report.msg)) throw new ConfigError(`${loc}: ${r.report.msg}`);
      if (r.report) report({ ...r.report, msg: `${loc}: ${r.report.msg}` });
      throw new ConfigError(`${loc}: parse error: ${spec.chardevSpec}`);
    }
    monitorChardevs.push({ chr: r.chr, mode: spec.mode, pretty: spec.pretty });
  });
  let serial: Chardev | null = null;
  const serialSpec = cfg.serial === undefined ? 'capture' : cfg.serial;
  if (serialSpec !== null && serialSpec !== 'capture' && serialSpec !== 'none') {
    const r = qemuChrNew(m, list, 'serial0', serialSpec, true);
    if (!r.ok) {
      // serial_parse: the chardev's error, then QEMU's own.
      if (r.report) report({ ...r.report, msg: `-serial ${serialSpec}: ${r.report.msg}` });
      throw new ConfigError(`-serial ${serialSpec}: could not connect serial device to character backend '${serialSpec}'`);
    } else {
      serial = r.chr;
      if (r.muxMonitor) attachMonitor(mons, serial, 'readline', false);
    }
  }
  for (const mc of monitorChardevs) attachMonitor(mons, mc.chr, mc.mode, mc.pretty);
  for (const spec of cfg.mons ?? []) {
    const o = monOpts(spec);
    const chr = charState(m).chardevs.get(o.chardev);
    if (!chr) throw new ConfigError(`${typeof spec === 'string' ? `-mon ${spec}: ` : ''}chardev "${o.chardev}" not found`);
    attachMonitor(mons, chr, o.mode ?? 'readline', o.pretty ?? false);
  }
  return serial;
}

function attachMonitor(mons: MonitorSet, chr: Chardev, mode: 'readline' | 'control', pretty: boolean): void {
  const r = mode === 'control' ? monitorInitQmp(mons, chr, { pretty }) : monitorInitHmp(mons, chr, {});
  if ('error' in r) throw new ConfigError(r.error);
}

/**
 * Drives (-drive), devices (-device), the snapshot commands and -loadvm, in QEMU's order
 * (configure_blockdev, qemu_create_cli_devices, then load_snapshot before the VM starts).
 */
function setupBlockDevices(m: VirtMachine, cfg: MachineConfig, mons: MonitorSet, say: (line: string) => void): void {
  blockSetIo(m, cfg.blockFiles ?? hostBlockFileProviderCreate());
  snapshotSetUtcOffset(m, cfg.utcOffsetSec ?? 0);
  for (const spec of cfg.drives ?? []) {
    const r = virtDriveAdd(m, spec);
    if (!r.ok) throw new ConfigError(`-drive ${spec}: ${r.error}`);
    for (const w of r.warnings) say(w);
  }
  for (const spec of cfg.devices ?? []) {
    const err = virtDeviceAdd(m, spec);
    if (err !== null) throw new ConfigError(`-device ${spec}: ${err}`);
  }
  registerSnapshotCommands(mons, snapshotMonitorOps(m));
  if (cfg.loadvm === undefined) return;
  const r = loadSnapshot(m, cfg.loadvm);
  for (const line of r.reports) say(`detvm: ${line}`);
  if (!r.ok) throw new ConfigError(r.error);
}

/** The configuration a log records: what decides the run, without host hooks or trace options. */
function replayConfigOf(config: MachineConfig, ramBytes: number, mode: ClockMode): Record<string, unknown> {
  return {
    smp: config.smp ?? 1, memory: ramBytes, serial: config.serial === undefined ? 'capture' : config.serial,
    chardevs: config.chardevs ?? [], monitors: config.monitors ?? [], qmp: config.qmp ?? [], qmpPretty: config.qmpPretty ?? [],
    mons: config.mons ?? [], startPaused: config.startPaused ?? false, noShutdown: config.noShutdown ?? false,
    rebootShutdown: config.rebootShutdown ?? false, name: config.name ?? null, icountShift: config.icountShift ?? 0,
    seed: config.seed ?? 0, clock: mode, rtcBaseSec: mode === 'virtual' ? config.rtcBaseSec ?? null : null,
    incoming: config.incoming ?? null, drives: config.drives ?? [], devices: config.devices ?? [], loadvm: config.loadvm ?? null,
  };
}

/** A MachineConfig that replays `header`'s log (detvm replay FILE). `kernel` overrides the image path. */
export function machineConfigFromLog(header: ReplayHeader, log: Uint8Array | string, kernel?: string): MachineConfig {
  const c = header.config as Record<string, never>;
  const cfg: MachineConfig = { ...(c as MachineConfig), memory: c['memory'], clock: header.mode, replay: { log } };
  for (const k of ['name', 'rtcBaseSec', 'incoming', 'loadvm'] as const) if (cfg[k] === null) delete cfg[k];
  const image = kernel ?? header.image?.name;
  if (image !== undefined) cfg.kernel = image;
  cfg.trace = header.traceLevel as TraceLevel;
  return cfg;
}

function readLog(file: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new ConfigError(`Replay: open ${file}: ${strerror(errnoCode(e))}`);
  }
}

/** Start recording or open the log to replay, per config.record / config.replay. */
function replaySessionOf(
  config: MachineConfig, ramBytes: number, mode: ClockMode, kernel: { name: string; bytes: Uint8Array } | null,
): ReplaySession | null {
  // Hashing a large image takes a while: only a recording or a replay needs it.
  const { record } = config;
  if (!config.replay && !record) return null;
  const canonical = replayConfigOf(config, ramBytes, mode);
  const imageHash = kernel ? replayImageHash(kernel.bytes) : null;
  if (config.replay) {
    const r = config.replay;
    const bytes = typeof r.log === 'string' ? readLog(r.log) : r.log;
    const name = r.name ?? (typeof r.log === 'string' ? r.log : 'memory');
    return replaySessionPlay(bytes, name, {
      detvm: DETVM_VERSION, allowOtherVersion: r.allowOtherVersion ?? false, config: canonical, imageHash,
    });
  }
  if (!record) return null;
  const file = record.file;
  let sink: ((chunk: Uint8Array) => void) | null = null;
  let close: (() => void) | null = null;
  if (file !== undefined) {
    let fd: number;
    try {
      fd = openSync(file, 'w');
    } catch (e) {
      throw new ConfigError(`Replay: open ${file}: ${strerror(errnoCode(e))}`);
    }
    sink = (chunk) => void writeSync(fd, chunk);
    close = () => closeSync(fd);
  }
  return replaySessionRecord({
    detvm: DETVM_VERSION, mode, config: canonical,
    image: kernel && imageHash ? { name: kernel.name, bytes: kernel.bytes.length, hash: imageHash } : null,
    seed: config.seed ?? 0, hostBaseSec: mode === 'live' ? config.host!.clock.baseSec : config.rtcBaseSec ?? DEFAULT_HOST_BASE_SEC,
    maxSliceInsns: mode === 'live' ? LIVE_MAX_SLICE_INSNS : null, icountShift: config.icountShift ?? 0,
    smp: config.smp ?? 1, traceLevel: config.trace ?? 0, filename: record.name ?? file ?? 'memory',
    rrsnapshot: record.snapshot ?? null, checkpointEvery: 32,
  }, sink, close);
}

/** Directory listings (HMP file-name completion) are host input too. */
function replayMonitorHost(rr: ReplaySession, host: MonitorHostHooks | undefined): MonitorHostHooks {
  const list = host?.listDirectory;
  return {
    ...host,
    listDirectory: (dir) => replaySessionHostCall(rr, 'listDirectory', [dir], () => (list ? list(dir) : null)),
  };
}

/** The record/replay handle, once the machine is created. */
function replayHandleOf(rr: ReplaySession | null, m: VirtMachine, mons: MonitorSet, cfg: ReplayConfig | undefined): ReplayHandle | null {
  if (rr === null) return null;
  if (rr.kind === 'record') {
    replayRecordReady(rr.rec);
    return replayHandleRecord(rr.rec, m);
  }
  rr.p.hooks.chrSend = (label, data) => {
    const chr = charState(m).chardevs.get(label);
    if (chr) libraryChardevSend(chr, data);
  };
  const d = replayDebuggerCreate(rr.p, m, {
    roots: [mons], intervalInsns: cfg?.snapshotIntervalInsns, intervalIterations: cfg?.snapshotIntervalIterations,
    budgetBytes: cfg?.snapshotBudgetBytes,
  });
  return replayHandlePlay(d, mons, () => charState(m).io);
}

/** The machine, unless it replays (a replay runs by its log: vm.replay.run()). */
function notReplaying(rr: ReplaySession | null, m: VirtMachine): VirtMachine {
  if (rr?.kind === 'play') throw new Error('a replaying machine runs by its log: use vm.replay.step(), run() or seek()');
  return m;
}

/** The library QMP client, which a recording cannot use: its input would bypass the log. */
function libraryClient(m: LoopMachine, rr: ReplaySession | null, chan: () => QmpClient): QmpClient {
  if (rr?.kind === 'record') {
    throw new Error('vm.qmp() and vm.hmp() are not recorded; while recording, drive the machine through its chardevs (a -qmp or -monitor socket, the console)');
  }
  if (m.loop.exclusive !== null) {
    // A monitor command would wait for the BQL in QEMU; a direct call cannot wait.
    throw new Error('the main loop is held by the migration thread (stop-and-copy in progress); step the machine until it is released');
  }
  return chan();
}

/**
 * Create a virt machine from `config`. Virtual mode (the default) runs in simulated time with
 * in-memory sockets and terminal; live mode needs `config.host`.
 * @throws ConfigError for bad options (QEMU's texts), Error for a kernel that does not load.
 */
export function createMachine(config: MachineConfig = {}): DetvmMachine {
  const ramBytes = parseSize(config.memory ?? 128 * 1024 * 1024);
  if (typeof ramBytes === 'string') throw new ConfigError(ramBytes);
  const level = config.trace ?? 0;
  const mode = config.clock ?? 'virtual';
  const kernel = loadKernelBytes(config.kernel);
  const rr = replaySessionOf(config, ramBytes, mode, kernel);
  if (mode === 'live' && !config.host && rr?.kind !== 'play') throw new ConfigError('live mode needs host clocks and I/O (config.host)');
  const monitorHost = rr ? replayMonitorHost(rr, config.monitorHost) : config.monitorHost;
  const reports: string[] = [];
  const say = config.report ?? ((line: string) => void reports.push(line));
  const events = new EventEmitter<MachineEvents>();
  let consoleText = '';
  let mons: MonitorSet | null = null;
  let serialChr: Chardev | null = null;
  let capture: Chardev | null = null;
  const m = virtMachineCreate({
    seed: config.seed ?? 0,
    trace: { level, retain: config.retainTrace ?? level > 0 },
    clock: {
      mode,
      ...(config.rtcBaseSec !== undefined ? { hostBaseSec: config.rtcBaseSec } : {}),
      ...(mode === 'live' ? { host: rr ? replaySessionClock(rr, config.host?.clock ?? null)! : config.host!.clock } : {}),
    },
    smp: config.smp ?? 1,
    ramBytes,
    kernel,
    icountShift: config.icountShift ?? 0,
    autostart: !config.startPaused,
    shutdownAction: config.noShutdown ? 'pause' : 'poweroff',
    rebootAction: config.rebootShutdown ? 'shutdown' : 'reset',
    name: config.name ?? null,
    serialFactory: (vm) => {
      // Record/replay attaches before any chardev exists: every host call is logged or answered.
      const rrIo = rr ? replaySessionAttach(rr, vm, mode === 'live' && config.host ? config.host.io(vm) : null, () => chardevIo(vm)) : null;
      if (rrIo) chardevSetIo(vm, rrIo);
      else if (mode === 'live') chardevSetIo(vm, config.host!.io(vm));
      const cs = charState(vm);
      cs.reportSink = (r) => say(chrReportFormat(r, 'detvm', null));
      vm.sys.report = (msg) => say(`detvm: ${msg}`);
      // Ctrl-A x: QEMU 7.2 prints "QEMU: Terminated" and exit(0)s.
      cs.hooks.muxExit = () => qemuSystemExitRequest(vm, 0);
      // ^C / ^\ on a stdio chardev with signal=on: terminate as on SIGINT / SIGQUIT.
      cs.hooks.stdioSignal = (sig) => qemuSystemKilled(vm, sig === 'SIGINT' ? 2 : 3, 0);
      mons = monitorsCreate(vm, virtMonitorMachine(vm, DETVM_PACKAGE,
        { snapshotTags: () => snapshotCompletionTags(vm), ...monitorHost }));
      suspendMuxOpen(vm);
      serialChr = setupChardevs(vm, config, mons, (r) => say(chrReportFormat(r, 'detvm', null)));
      if (config.serial === undefined || config.serial === 'capture') {
        capture = libraryChardevCreate(vm, 'serial0', (text) => {
          consoleText += text;
          events.emit('console', text);
        }, true);
        serialChr = capture;
      }
      return serialChr;
    },
  });
  const monitors = mons as unknown as MonitorSet;
  replayRegisterCommands(monitors);
  // Live mode: a vCPU turn must end every few milliseconds so host I/O stays responsive.
  if (mode === 'live') m.sys.maxSliceInsns = LIVE_MAX_SLICE_INSNS;
  resumeMuxOpen(m);
  notifierListAdd(m.qapiEvents, (e: QapiEvent) => {
    events.emit('event', { ...e, timestamp: hostWallClock(m.clocks) });
  });
  m.migration.io = () => chardevIo(m);
  if (config.host?.exec) m.migration.exec = config.host.exec(m);
  setupBlockDevices(m, config, monitors, say);
  migrationRegisterCommands(monitors, migrationMonitorBindings(m));
  if (config.incoming !== undefined) {
    const err = migrationIncomingStartup(m, config.incoming);
    if (err !== null) throw new ConfigError(`-incoming ${config.incoming}: ${err}`);
  } else {
    virtMachineDone(m);
  }
  const replay = replayHandleOf(rr, m, monitors, config.replay);


  let closed = false;
  let client: QmpClient | null = null;
  const qmpChan = (): QmpClient => {
    client ??= qmpClientCreate(m, monitors);
    return client;
  };
  const records = (): readonly TraceRecord[] => m.trace.records ?? [];
  const runOpts = (opts: { until: number | (() => boolean) } & RunLimits): void => {
    const { until, ...limits } = opts;
    if (typeof until === 'number') runFor(m, until, limits);
    else runUntil(m, until, limits);
  };
  return {
    kernel: m,
    monitors,
    events,
    reports,
    console: {
      text: () => consoleText,
      input: (t) => {
        if (!capture) throw new Error('the serial port is not a capture chardev (config.serial)');
        const bytes = typeof t === 'string' ? Buffer.from(t, 'latin1') : t;
        if (rr?.kind === 'play') throw new Error('a replaying machine takes its input from the log');
        if (rr?.kind === 'record') replayRecordChrSend(rr.rec, capture.label, bytes);
        libraryChardevSend(capture, bytes);
      },
    },
    step: () => (rr?.kind === 'play' ? replay!.step().records : loopStep(m)),
    runFor: (ns, limits) => runFor(notReplaying(rr, m), ns, limits),
    runUntil: (pred, limits) => runUntil(notReplaying(rr, m), pred, limits),
    run: runOpts,
    hmp: (line) => {
      if (rr?.kind === 'play') return replay!.hmp(line);
      const r = libraryClient(m, rr, qmpChan).command('human-monitor-command', { 'command-line': line });
      return typeof r === 'string' ? r : '';
    },
    qmp: (command, args) => (rr?.kind === 'play' ? replay!.qmp(command, args) : libraryClient(m, rr, qmpChan).command(command, args)),
    replay,
    signal: (sig, pid = 0) => {
      if (rr?.kind === 'play') throw new Error('a replaying machine takes its signals from the log');
      if (rr?.kind === 'record') replayRecordSignal(rr.rec, sig, pid);
      qemuSystemKilled(m, sig, pid);
    },
    exitStatus: () => m.loop.exitStatus,
    save: () => {
      const r = migrationSaveVmBytes(m);
      if (r instanceof Uint8Array) return r;
      throw new MigrationError(r);
    },
    load: (bytes) => {
      const failure = migrationLoadVm(m, bytes);
      if (failure !== null) throw new MigrationError(failure);
    },
    close: () => {
      if (closed) return;
      closed = true;
      if (rr?.kind === 'record') replayRecordFinish(rr.rec, 'the machine was closed');
      vmShutdown(m);
      jobCancelSyncAll(m);
      bdrvCloseAll(m);
      qemuChrCleanup(m);
    },
    trace: {
      hash: () => traceHash(m.trace),
      records,
      jsonLines: () => exportJsonLines(records()),
      callTree: () => exportCallTree(records()),
      chrome: () => exportChromeTrace(records()),
    },
  };
}
