// The detvm command line: QEMU's option syntax (softmmu/vl.c, qemu-options.hx) turned into a
// MachineConfig. Pure: parses argv, reads nothing; errors carry QEMU's texts and exit codes
// ("detvm: -foo: invalid option", status 1), prefixed with the option where QEMU reports its
// location ("-icount shift=11: icount: Invalid shift value"). Options take their argument as the
// next word, and a double dash (--smp) is accepted like a single one, as QEMU does.

import { type MachineConfig, parseSize } from '../index.ts';

/** What the command line asks for. */
export type CliAction =
  | { kind: 'run'; config: MachineConfig; live: boolean; traceFile: string | null; traceFormat: TraceFormat; migrateExec?: boolean }
  | { kind: 'version' }
  | { kind: 'help' }
  | { kind: 'error'; message: string; status: number };

export type TraceFormat = 'jsonl' | 'tree' | 'chrome';

/** Options that take an argument, and those that do not (others are invalid). */
const WITH_ARG = new Set([
  'M', 'machine', 'cpu', 'smp', 'm', 'kernel', 'bios', 'serial', 'monitor', 'qmp', 'qmp-pretty', 'chardev', 'mon',
  'display', 'action', 'incoming', 'migrate-exec', 'icount', 'drive', 'loadvm', 'name', 'rtc', 'seed', 'accel', 'clock',
  'dtrace', 'dtrace-file', 'dtrace-format', 'device', 'echr',
]);
const NO_ARG = new Set(['nographic', 'S', 'no-shutdown', 'no-reboot', 'version', 'h', 'help', 'snapshot']);

function err(message: string, status = 1): CliAction {
  return { kind: 'error', message, status };
}

/** -smp [cpus=]n[,sockets=..,cores=..,threads=..,maxcpus=..]: detvm takes the CPU count. */
function parseSmp(v: string): number | string {
  let cpus: number | null = null;
  for (const [i, part] of v.split(',').entries()) {
    const [k, val] = part.includes('=') || i > 0 ? part.split('=', 2) as [string, string | undefined] : ['cpus', part];
    if (!['cpus', 'sockets', 'dies', 'clusters', 'cores', 'threads', 'maxcpus'].includes(k)) return `Parameter 'smp.${k}' is unexpected`;
    if (val === undefined || !/^\d+$/.test(val)) return `Parameter 'smp.${k}' expects integer`;
    if (k === 'cpus') cpus = Number(val);
  }
  return cpus ?? 1;
}

/** Display types QEMU 7.2 knows (detvm has none of them but `none`). @qemu qapi/ui.json DisplayType */
const QEMU_DISPLAYS = new Set(['default', 'none', 'gtk', 'sdl', 'egl-headless', 'curses', 'cocoa', 'spice-app', 'dbus', 'vnc']);

/** -rtc base=utc|localtime|DATE,clock=host|rt|vm,driftfix=none|slew. @qemu softmmu/rtc.c configure_rtc */
function parseRtc(v: string, cfg: MachineConfig): string | null {
  for (const part of v.split(',')) {
    const [k, val = ''] = part.split('=', 2) as [string, string | undefined];
    if (k === 'base') {
      if (val === 'utc' || val === 'localtime') continue;
      const t = Date.parse(val.endsWith('Z') ? val : `${val}Z`);
      if (!/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2})?$/.test(val) || Number.isNaN(t)) {
        return `invalid datetime format\nvalid formats: '2006-06-17T16:01:21' or '2006-06-17'`;
      }
      cfg.rtcBaseSec = Math.floor(t / 1000);
    } else if (k === 'clock') {
      if (val !== 'host' && val !== 'rt' && val !== 'vm') return `invalid option value '${val}'`;
    } else if (k === 'driftfix') {
      if (val !== 'none' && val !== 'slew') return `invalid option value '${val}'`;
    } else {
      return `Invalid parameter '${k}'`;
    }
  }
  return null;
}

/**
 * -icount [shift=N][,align=..][,sleep=..][,rr=record|replay,rrfile=F[,rrsnapshot=S]], with
 * QEMU's texts. @qemu softmmu/icount.c icount_configure, replay/replay.c replay_configure
 */
function parseIcount(v: string, cfg: MachineConfig): string | null {
  let rr: string | null = null;
  let rrfile: string | null = null;
  let rrsnapshot: string | null = null;
  for (const part of v.split(',')) {
    const [k, val = ''] = part.includes('=') ? part.split('=', 2) as [string, string] : ['shift', part];
    if (k === 'shift') {
      if (val === 'auto') return 'icount: shift=auto is not supported by detvm (a fixed shift keeps runs repeatable)';
      if (!/^\d+$/.test(val) || Number(val) > 10) return 'icount: Invalid shift value';
      cfg.icountShift = Number(val);
    } else if (k === 'rr') {
      rr = val;
    } else if (k === 'rrfile') {
      rrfile = val;
    } else if (k === 'rrsnapshot') {
      rrsnapshot = val;
    } else if (k !== 'align' && k !== 'sleep') {
      return `Invalid parameter '${k}'`;
    }
  }
  if (rr === null) return null;
  if (rr !== 'record' && rr !== 'replay') return `Invalid icount rr option: ${rr}`;
  if (rrfile === null || rrfile === '') return 'File name not specified for replay';
  if (rr === 'record') cfg.record = { file: rrfile, ...(rrsnapshot !== null ? { snapshot: rrsnapshot } : {}) };
  else cfg.replay = { log: rrfile };
  return null;
}

function parseAction(v: string, cfg: MachineConfig): string | null {
  for (const part of v.split(',')) {
    const [k, val] = part.split('=', 2) as [string, string | undefined];
    if (k === 'shutdown') {
      if (val === 'pause') cfg.noShutdown = true;
      else if (val === 'poweroff') cfg.noShutdown = false;
      else return `Parameter 'shutdown' does not accept value '${val ?? ''}'`;
    } else if (k === 'reboot') {
      if (val === 'shutdown') cfg.rebootShutdown = true;
      else if (val === 'reset') cfg.rebootShutdown = false;
      else return `Parameter 'reboot' does not accept value '${val ?? ''}'`;
    } else if (k === 'panic' || k === 'watchdog') {
      // No device of the virt board raises these in detvm; accepted for compatibility.
    } else {
      return `Invalid parameter '${k}'`;
    }
  }
  return null;
}

/** Parse `argv` (without node and the script). */
export function parseCommandLine(argv: readonly string[]): CliAction {
  const cfg: MachineConfig = { clock: 'live' };
  let nographic = false;
  /** QEMU's default_monitor: -monitor (even `none`), -qmp and -mon take the stdio monitor away. */
  let defaultMonitor = true;
  let display: string | null = null;
  let traceFile: string | null = null;
  let traceFormat: TraceFormat = 'jsonl';
  let migrateExec = false;
  const serials: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (!word.startsWith('-')) {
      // QEMU treats a lone word as the disk image (-hda); detvm has no IDE disk.
      return err(`${word}: a disk image without an option is not supported (use -drive)`);
    }
    const name = word.replace(/^--?/, '');
    if (NO_ARG.has(name)) {
      switch (name) {
        case 'version': return { kind: 'version' };
        case 'h': case 'help': return { kind: 'help' };
        case 'nographic': nographic = true; break;
        case 'S': cfg.startPaused = true; break;
        case 'no-shutdown': cfg.noShutdown = true; break;
        case 'no-reboot': cfg.rebootShutdown = true; break;
        case 'snapshot': break;
      }
      continue;
    }
    if (!WITH_ARG.has(name)) return err(`${word}: invalid option`);
    const v = argv[++i];
    if (v === undefined) return err(`${word}: requires an argument`);
    // QEMU reports these errors at the option's location (loc_set_cmdline).
    const at = (msg: string): CliAction => err(`${word} ${v}: ${msg}`);
    switch (name) {
      case 'M': case 'machine': {
        const type = v.split(',')[0]!;
        if (type === 'help' || type === '?') return { kind: 'error', message: 'Supported machines are:\nvirt                 RISC-V VirtIO board', status: 0 };
        if (type !== 'virt') return err(`unsupported machine type\nUse -machine help to list supported machines`);
        break;
      }
      case 'cpu':
        if (v !== 'rv32' && v !== 'any') return err(`unable to find CPU model '${v}'`);
        break;
      case 'accel':
        if (!v.startsWith('tcg')) return at(`invalid accelerator ${v.split(',')[0]}`);
        break;
      case 'bios':
        // detvm has no firmware: -kernel images boot as with QEMU's -bios none.
        if (v !== 'none') return err(`Unable to load the RISC-V firmware "${v}"`);
        break;
      case 'smp': {
        const n = parseSmp(v);
        if (typeof n === 'string') return err(n);
        cfg.smp = n;
        break;
      }
      case 'm': {
        const size = v.replace(/^size=/, '');
        const bytes = parseSize(size);
        if (typeof bytes === 'string') return at(bytes);
        cfg.memory = size;
        break;
      }
      case 'kernel': cfg.kernel = v; break;
      case 'serial': serials.push(v); break;
      case 'monitor':
        defaultMonitor = false;
        if (!v.startsWith('none')) (cfg.monitors ??= []).push(v); // vl.c: strncmp(optarg, "none", 4)
        break;
      case 'qmp': defaultMonitor = false; (cfg.qmp ??= []).push(v); break;
      case 'qmp-pretty': defaultMonitor = false; (cfg.qmpPretty ??= []).push(v); break;
      case 'chardev': (cfg.chardevs ??= []).push(v); break;
      case 'mon': {
        const mode = /(?:^|,)mode=([^,]*)/.exec(v)?.[1];
        if (mode !== undefined && mode !== 'readline' && mode !== 'control') return at(`Parameter 'mode' does not accept value '${mode}'`);
        const pretty = /(?:^|,)pretty=([^,]*)/.exec(v)?.[1];
        if (pretty !== undefined && pretty !== 'on' && pretty !== 'off') return at(`Parameter 'pretty' expects 'on' or 'off'`);
        (cfg.mons ??= []).push(v);
        defaultMonitor = false;
        break;
      }
      case 'display':
        display = v.split(',')[0]!;
        if (!QEMU_DISPLAYS.has(display)) return at(`Parameter 'type' does not accept value '${display}'`);
        break;
      case 'name': cfg.name = v.startsWith('guest=') ? v.slice(6).split(',')[0]! : v.split(',')[0]!; break;
      case 'icount': {
        const e = parseIcount(v, cfg);
        if (e) return at(e);
        break;
      }
      case 'action': {
        const e = parseAction(v, cfg);
        if (e) return at(e);
        break;
      }
      case 'rtc': {
        const e = parseRtc(v, cfg);
        if (e) return e.startsWith('Invalid parameter') ? at(e) : err(e);
        break;
      }
      case 'seed':
        if (!/^\d+$/.test(v) || Number(v) > 0xffffffff) return err(`-seed: '${v}' is not a number from 0 to 4294967295`);
        cfg.seed = Number(v);
        break;
      case 'clock':
        if (v !== 'virtual' && v !== 'live') return err(`-clock: '${v}' is not 'virtual' or 'live'`);
        cfg.clock = v;
        break;
      case 'dtrace':
        if (!/^[012]$/.test(v)) return err(`-dtrace: level '${v}' is not 0, 1 or 2`);
        cfg.trace = Number(v) as 0 | 1 | 2;
        break;
      case 'dtrace-file': traceFile = v; break;
      case 'dtrace-format':
        if (v !== 'jsonl' && v !== 'tree' && v !== 'chrome') return err(`-dtrace-format: '${v}' is not jsonl, tree or chrome`);
        traceFormat = v;
        break;
      case 'echr': break;
      case 'incoming': cfg.incoming = v; break;
      case 'migrate-exec':
        if (v !== 'on' && v !== 'off') return err(`-migrate-exec: '${v}' is not on or off`);
        migrateExec = v === 'on';
        break;
      case 'drive': (cfg.drives ??= []).push(v); break;
      case 'device': (cfg.devices ??= []).push(v); break;
      case 'loadvm': cfg.loadvm = v; break;
    }
  }
  if (display !== null && display !== 'none') return err(`Display '${display}' is not available`);
  if (serials.length > 1) return err('-serial: only one serial port on the virt board');
  if (serials.length === 1) {
    cfg.serial = serials[0] === 'none' ? null : serials[0]!;
  } else if (nographic) {
    // -nographic: serial and monitor multiplexed on stdio, unless a monitor option was given
    // (qemu_create_default_devices).
    cfg.serial = defaultMonitor ? 'mon:stdio' : 'stdio';
  } else {
    cfg.serial = null;
  }
  if (traceFile !== null && (cfg.trace ?? 0) === 0) cfg.trace = 1;
  return { kind: 'run', config: cfg, live: cfg.clock === 'live', traceFile, traceFormat, migrateExec };
}

/** `detvm -h` text. */
export const HELP_TEXT = `usage: detvm [options]

detvm emulates QEMU 7.2.22's control plane on the riscv32 virt board, deterministically.

Standard options:
-h or -help              display this help and exit
-version                 display version information and exit
-M virt | -machine virt  select the machine (virt is the only one)
-cpu rv32                select the CPU model
-accel tcg               the accelerator (tcg is the only one)
-smp N                   number of harts (1 to 8)
-m SIZE                  RAM size (default 128M)
-name NAME               the VM's name (query-name, info name)
-kernel FILE             the guest: an ELF32 RISC-V or raw image, as with -bios none
-bios none               no firmware (the only supported value)
-nographic               serial port and HMP monitor multiplexed on stdio (Ctrl-A c switches)
-display none            no display
-serial DEV              the serial port's chardev (stdio, mon:stdio, null, file:F, tcp:..., none)
-chardev TYPE,id=ID,...  a character device (socket, stdio, file, ringbuf, memory, null)
-monitor DEV             an HMP monitor on DEV
-qmp DEV                 a QMP monitor on DEV; -qmp-pretty for pretty-printed JSON
-mon chardev=ID[,mode=readline|control][,pretty=on|off]
-S                       do not start the CPUs (cont starts them)
-drive OPTS              a drive: if=none,file=F,format=qcow2|raw,id=ID[,node-name=N][,read-only=on]
-device virtio-blk-device,drive=ID[,id=NAME][,serial=S]
                         a virtio-blk disk on the next free virtio-mmio transport
-loadvm TAG              start from snapshot TAG (of the qcow2 drives)
-incoming URI|defer      wait for an incoming migration (tcp:HOST:PORT, unix:PATH, file:PATH)
-no-shutdown             stop instead of exiting on shutdown (-action shutdown=pause)
-action shutdown=pause|poweroff,reboot=reset|shutdown
-icount shift=N          N: each instruction is 2^N ns of guest time (default 0)
-icount shift=N,rr=record|replay,rrfile=FILE
                         record every input of the run to FILE, or replay FILE (detvm replay FILE
                         steps through a recording)
-rtc base=DATE           wall-clock time at start (virtual clock mode)
-snapshot                accepted and ignored

detvm options:
-clock virtual|live      virtual: run the same configuration as fast as possible in simulated
                         time (no real time, no host sockets); live (default): real time
-seed N                  seed of the machine's PRNG
-dtrace LEVEL            trace level: 0 off, 1 control plane, 2 devices
-dtrace-file FILE        write the trace to FILE (implies -dtrace 1)
-dtrace-format F         jsonl (default), tree or chrome (Perfetto)
-migrate-exec on|off     allow exec:CMD migration URIs, run with /bin/sh -c (live mode; default off)

Sub-commands:
detvm replay FILE [...]  replay or step through a record/replay log (docs/cli.md)
detvm analyze FILE [...] walk a migration stream

Long operations (migrate, savevm, loadvm, replay) show their progress on stderr when it is a
terminal.
`;
