// detvm's package entry and composition root (DESIGN.md §2): turns a configuration (the library's
// object, or the command line parsed by bin/) into a virt machine with its chardevs and monitors,
// in QEMU 7.2's order (softmmu/vl.c): -chardev backends, monitor chardevs, -serial, -mon
// monitors, machine init with device realize, resume_mux_open, then vm_start unless -S.

import { readFileSync } from 'node:fs';
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
import type { ChardevIo } from './core/host/index.ts';
import {
  type QemuOptsList, qemuChardevOptsList, qemuChardevOptsParse, qemuChrNewFromOpts, qemuChrNew, chardevSetIo,
  resumeMuxOpen, suspendMuxOpen, qemuOptsParseNoisily, qemuOptGet, qemuOptGetBool, libraryChardevCreate,
  libraryChardevSend, qemuChrCleanup,
} from './chardev/index.ts';
import {
  type MonitorSet, type MonitorHostHooks, type QmpClient, monitorsCreate, monitorInitHmp, monitorInitQmp,
  virtMonitorMachine, qmpClientCreate, QmpCommandError,
} from './monitor/index.ts';

export type { RunLimits, TraceRecord, TraceLevel };
export { QmpCommandError };

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
  /** Live mode: the host clocks and the host I/O (sockets, stdio). */
  host?: { clock: HostClockSource; io: (m: LoopMachine) => ChardevIo };
  /** Where messages for the user go (error_report); default: kept in `vm.reports`. */
  report?: (line: string) => void;
  /** Host hooks for the monitor (stdout/stderr, directory listing for completion). */
  monitorHost?: MonitorHostHooks;
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
   * Tear down as QEMU does after its main loop (qemu_cleanup): stop the VM without a STOP event,
   * then close every chardev (clients see their connections close). Idempotent.
   */
  close(): void;
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
  const fail = (r: ChrReport | null, fallback: string): never => {
    if (r) report(r);
    throw new ConfigError(r ? r.msg : fallback);
  };
  for (const spec of cfg.chardevs ?? []) {
    const p = qemuChardevOptsParse(list, spec);
    if (!p.ok) throw new ConfigError(p.error);
    for (const w of p.warnings) report(w);
    const r = qemuChrNewFromOpts(m, p.value);
    if (!r.ok) fail({ level: 'error', msg: r.error }, r.error);
  }
  const monitorSpecs: Array<{ chardevSpec: string; mode: 'readline' | 'control'; pretty: boolean }> = [
    ...(cfg.monitors ?? []).map((s) => ({ chardevSpec: s, mode: 'readline' as const, pretty: false })),
    ...(cfg.qmp ?? []).map((s) => ({ chardevSpec: s, mode: 'control' as const, pretty: false })),
    ...(cfg.qmpPretty ?? []).map((s) => ({ chardevSpec: s, mode: 'control' as const, pretty: true })),
  ];
  const monitorChardevs: Array<{ chr: Chardev; mode: 'readline' | 'control'; pretty: boolean }> = [];
  monitorSpecs.forEach((spec, i) => {
    const r = qemuChrNew(m, list, `compat_monitor${i}`, spec.chardevSpec, true);
    if (!r.ok) fail(r.report, `could not connect monitor device '${spec.chardevSpec}'`);
    else monitorChardevs.push({ chr: r.chr, mode: spec.mode, pretty: spec.pretty });
  });
  let serial: Chardev | null = null;
  const serialSpec = cfg.serial === undefined ? 'capture' : cfg.serial;
  if (serialSpec !== null && serialSpec !== 'capture' && serialSpec !== 'none') {
    const r = qemuChrNew(m, list, 'serial0', serialSpec, true);
    if (!r.ok) fail(r.report, `could not connect serial device to character backend '${serialSpec}'`);
    else {
      serial = r.chr;
      if (r.muxMonitor) attachMonitor(mons, serial, 'readline', false);
    }
  }
  for (const mc of monitorChardevs) attachMonitor(mons, mc.chr, mc.mode, mc.pretty);
  for (const spec of cfg.mons ?? []) {
    const o = monOpts(spec);
    const chr = charState(m).chardevs.get(o.chardev);
    if (!chr) throw new ConfigError(`chardev "${o.chardev}" not found`);
    attachMonitor(mons, chr, o.mode ?? 'readline', o.pretty ?? false);
  }
  return serial;
}

function attachMonitor(mons: MonitorSet, chr: Chardev, mode: 'readline' | 'control', pretty: boolean): void {
  const r = mode === 'control' ? monitorInitQmp(mons, chr, { pretty }) : monitorInitHmp(mons, chr, {});
  if ('error' in r) throw new ConfigError(r.error);
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
  if (mode === 'live' && !config.host) throw new ConfigError('live mode needs host clocks and I/O (config.host)');
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
      ...(mode === 'live' ? { host: config.host!.clock } : {}),
    },
    smp: config.smp ?? 1,
    ramBytes,
    kernel: loadKernelBytes(config.kernel),
    icountShift: config.icountShift ?? 0,
    autostart: !config.startPaused,
    shutdownAction: config.noShutdown ? 'pause' : 'poweroff',
    rebootAction: config.rebootShutdown ? 'shutdown' : 'reset',
    name: config.name ?? null,
    serialFactory: (vm) => {
      if (mode === 'live') chardevSetIo(vm, config.host!.io(vm));
      const cs = charState(vm);
      cs.reportSink = (r) => say(chrReportFormat(r, 'detvm', null));
      vm.sys.report = (msg) => say(`detvm: ${msg}`);
      // Ctrl-A x: QEMU 7.2 prints "QEMU: Terminated" and exit(0)s.
      cs.hooks.muxExit = () => qemuSystemExitRequest(vm, 0);
      // ^C / ^\ on a stdio chardev with signal=on: terminate as on SIGINT / SIGQUIT.
      cs.hooks.stdioSignal = (sig) => qemuSystemKilled(vm, sig === 'SIGINT' ? 2 : 3, 0);
      mons = monitorsCreate(vm, virtMonitorMachine(vm, DETVM_PACKAGE, config.monitorHost));
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
  // Live mode: a vCPU turn must end every few milliseconds so host I/O stays responsive.
  if (mode === 'live') m.sys.maxSliceInsns = LIVE_MAX_SLICE_INSNS;
  resumeMuxOpen(m);
  notifierListAdd(m.qapiEvents, (e: QapiEvent) => {
    events.emit('event', { ...e, timestamp: hostWallClock(m.clocks) });
  });
  virtMachineDone(m);

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
        libraryChardevSend(capture, typeof t === 'string' ? Buffer.from(t, 'latin1') : t);
      },
    },
    step: () => loopStep(m),
    runFor: (ns, limits) => runFor(m, ns, limits),
    runUntil: (pred, limits) => runUntil(m, pred, limits),
    run: runOpts,
    hmp: (line) => {
      const r = qmpChan().command('human-monitor-command', { 'command-line': line });
      return typeof r === 'string' ? r : '';
    },
    qmp: (command, args) => qmpChan().command(command, args),
    exitStatus: () => m.loop.exitStatus,
    close: () => {
      if (closed) return;
      closed = true;
      vmShutdown(m);
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
