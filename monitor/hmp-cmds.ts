// The HMP commands of the monitor issue (hmp-commands.hx / hmp-commands-info.hx entries with their
// handlers from monitor/hmp-cmds.c and monitor/misc.c): help, info, stop, cont, system_reset,
// quit, x/xp, print, ringbuf_write/read and info status/cpus/registers/chardev/history/version/
// name. Handlers call the QMP handlers as QEMU does; errors print as "Error: <desc>".

import type { Monitor, MonitorSet } from './monitor.ts';
import { errorReport, monitorGetCpuIndex, monitorPrintf, monitorSuspend } from './monitor.ts';
import type { HmpArgs, HmpCommand } from './hmp-commands.ts';
import { helpCmd } from './hmp-commands.ts';
import { parseCmdline } from './hmp-args.ts';
import { readlineGetHistory } from './readline.ts';
import { qmpCont, qmpQueryStatus, qmpQuit, qmpRingbufRead, qmpRingbufWrite, qmpStop, qmpSystemReset } from './qmp-cmds.ts';
import type { QmpResult } from './qmp-dispatch.ts';
import { memoryDump, monitorPrintc } from './hmp-memory.ts';
import { utf8ToBytes } from './qobject.ts';
import { TRACE_CONTROL, traceSpan } from '../core/trace/index.ts';

/** Call a QMP handler from HMP as QEMU does (hmp_cont → qmp_cont), traced as a span of its own. */
function viaQmp<T>(mons: MonitorSet, name: string, fn: (mons: MonitorSet) => T): T {
  return traceSpan(mons.m, TRACE_CONTROL, name, undefined, () => fn(mons));
}


/** error_reportf_err(err, "Error: "). @qemu monitor/hmp-cmds.c hmp_handle_error */
export function hmpHandleError(mons: MonitorSet, res: QmpResult | { ok: false; desc: string }): boolean {
  if (res.ok) return false;
  errorReport(mons, 'Error: ' + ('desc' in res ? res.desc : res.error.desc));
  return true;
}

function str(args: HmpArgs, key: string): string | null {
  const v = args.get(key);
  return typeof v === 'string' ? v : null;
}

function int(args: HmpArgs, key: string, dflt: bigint): bigint {
  const v = args.get(key);
  return typeof v === 'bigint' ? v : dflt;
}

function hmpInfoStatus(mons: MonitorSet, mon: Monitor): void {
  const s = qmpQueryStatus(mons);
  let line = `VM status: ${s.running ? 'running' : 'paused'}${s.singlestep ? ' (single step mode)' : ''}`;
  if (!s.running && s.status !== 'paused') line += ` (${s.status})`;
  monitorPrintf(mons, mon, line + '\n');
}

function hmpInfoCpus(mons: MonitorSet, mon: Monitor): void {
  const current = monitorGetCpuIndex(mons, mon);
  for (const c of mons.machine.cpus()) {
    monitorPrintf(mons, mon, `${c.cpuIndex === current ? '*' : ' '} CPU #${c.cpuIndex}: thread_id=${c.threadId}\n`);
  }
}

/** @qemu monitor/misc.c hmp_info_registers */
function hmpInfoRegisters(mons: MonitorSet, mon: Monitor, args: HmpArgs): void {
  const mc = mons.machine;
  const all = args.get('cpustate_all') === true;
  const vcpu = Number(BigInt.asIntN(32, int(args, 'vcpu', -1n)));
  if (all) {
    for (const c of mc.cpus()) monitorPrintf(mons, mon, `\nCPU#${c.cpuIndex}\n${mc.cpuDumpState(c.cpuIndex)}`);
    return;
  }
  const idx = vcpu >= 0 ? (mc.cpus().some((c) => c.cpuIndex === vcpu) ? vcpu : -1) : monitorGetCpuIndex(mons, mon);
  if (idx < 0) {
    monitorPrintf(mons, mon, vcpu >= 0 ? `CPU#${vcpu} not available\n` : 'No CPU available\n');
    return;
  }
  monitorPrintf(mons, mon, `\nCPU#${idx}\n${mc.cpuDumpState(idx)}`);
}

function hmpInfoHistory(mons: MonitorSet, mon: Monitor): void {
  if (mon.kind !== 'hmp' || !mon.rs) return;
  for (let i = 0; i < 64; i++) {
    const h = readlineGetHistory(mon.rs, i);
    if (h === null) break;
    monitorPrintf(mons, mon, `${i}: '${h}'\n`);
  }
}

function hmpInfoVersion(mons: MonitorSet, mon: Monitor): void {
  const v = mons.machine.version;
  monitorPrintf(mons, mon, `${v.major}.${v.minor}.${v.micro}${utf8ToBytes(mons.machine.package)}\n`);
}

/** @qemu monitor/misc.c do_print */
function hmpPrint(mons: MonitorSet, mon: Monitor, args: HmpArgs): void {
  const format = Number(int(args, 'format', 0x78n));
  const val = BigInt.asUintN(64, int(args, 'val', 0n));
  let out: string;
  switch (String.fromCharCode(format)) {
    case 'o': out = val === 0n ? '0' : '0' + val.toString(8); break;
    case 'x': out = val === 0n ? '0' : '0x' + val.toString(16); break;
    case 'u': out = val.toString(); break;
    case 'c': out = monitorPrintc(Number(BigInt.asIntN(32, val))); break;
    default: out = BigInt.asIntN(64, val).toString(); break;
  }
  monitorPrintf(mons, mon, out + '\n');
}

/** @qemu monitor/hmp-cmds.c hmp_ringbuf_read */
function hmpRingbufRead(mons: MonitorSet, mon: Monitor, args: HmpArgs): void {
  const size = BigInt.asUintN(32, int(args, 'size', 0n));
  const r = qmpRingbufRead(mons, str(args, 'device') ?? '', size, undefined);
  if (!r.ok) {
    hmpHandleError(mons, r);
    return;
  }
  let out = '';
  for (let i = 0; i < r.data.length; i++) {
    const ch = r.data.charCodeAt(i);
    if (ch === 0) break; // a NUL-terminated string in QEMU
    if (ch === 0x5c) out += '\\\\';
    else if ((ch < 0x20 && ch !== 0x0a && ch !== 0x09) || ch === 0x7f) out += `\\u${ch.toString(16).toUpperCase().padStart(4, '0')}`;
    else out += r.data[i];
  }
  monitorPrintf(mons, mon, out + '\n');
}

/** The main-table commands of this issue. */
export const HMP_BASE_COMMANDS: readonly HmpCommand[] = [
  { name: 'help|?', argsType: 'name:S?', params: '[cmd]', help: 'show the help', flags: 'p',
    cmd: (mons, mon, a) => helpCmd(mons, mon, str(a, 'name'), (s) => parseCmdline(mons, s)) },
  { name: 'info', argsType: 'item:s?', params: '[subcommand]', help: 'show various information about the system state', flags: 'p',
    cmd: (mons, mon) => helpCmd(mons, mon, 'info', (s) => parseCmdline(mons, s)) },
  { name: 'quit|q', argsType: '', params: '', help: 'quit the emulator', flags: 'p',
    cmd: (mons, mon) => {
      monitorSuspend(mons, mon);
      qmpQuit(mons);
    } },
  { name: 'stop|s', argsType: '', params: '', help: 'stop emulation', cmd: (mons) => void viaQmp(mons, 'qmp_stop', qmpStop) },
  {
    name: 'cont|c', argsType: '', params: '', help: 'resume emulation',
    cmd: (mons) => void hmpHandleError(mons, viaQmp(mons, 'qmp_cont', qmpCont)),
  },
  {
    name: 'system_reset', argsType: '', params: '', help: 'reset the system',
    cmd: (mons) => void viaQmp(mons, 'qmp_system_reset', qmpSystemReset),
  },
  { name: 'x', argsType: 'fmt:/,addr:l', params: '/fmt addr', help: "virtual memory dump starting at 'addr'",
    cmd: (mons, mon, a) => memoryDump(mons, mon, a, false) },
  { name: 'xp', argsType: 'fmt:/,addr:l', params: '/fmt addr', help: "physical memory dump starting at 'addr'",
    cmd: (mons, mon, a) => memoryDump(mons, mon, a, true) },
  { name: 'print|p', argsType: 'fmt:/,val:l', params: '/fmt expr', help: 'print expression value (use $reg for CPU register access)',
    cmd: hmpPrint },
  { name: 'ringbuf_write', argsType: 'device:s,data:s', params: 'device data', help: 'Write to a ring buffer character device',
    cmd: (mons, _mon, a) => void hmpHandleError(mons, qmpRingbufWrite(mons, str(a, 'device') ?? '', str(a, 'data') ?? '', undefined)) },
  { name: 'ringbuf_read', argsType: 'device:s,size:i', params: 'device size', help: 'Read from a ring buffer character device',
    cmd: hmpRingbufRead },
];

/** The info sub-commands of this issue. */
export const HMP_BASE_INFO_COMMANDS: readonly HmpCommand[] = [
  { name: 'status', argsType: '', params: '', help: 'show the current VM status (running|paused)', flags: 'p', cmd: hmpInfoStatus },
  { name: 'cpus', argsType: '', params: '', help: 'show infos for each CPU', cmd: hmpInfoCpus },
  { name: 'registers', argsType: 'cpustate_all:-a,vcpu:i?', params: '[-a|vcpu]',
    help: "show the cpu registers (-a: show register info for all cpus; vcpu: specific vCPU to query; show the current CPU's registers if no argument is specified)",
    cmd: hmpInfoRegisters },
  { name: 'chardev', argsType: '', params: '', help: 'show the character devices', flags: 'p',
    cmd: (mons, mon) => {
      for (const c of mons.machine.chardevs()) monitorPrintf(mons, mon, utf8ToBytes(`${c.label}: filename=${c.filename}\n`));
    } },
  { name: 'history', argsType: '', params: '', help: 'show the command line history', flags: 'p', cmd: hmpInfoHistory },
  { name: 'version', argsType: '', params: '', help: 'show the version of QEMU', flags: 'p', cmd: hmpInfoVersion },
  { name: 'name', argsType: '', params: '', help: 'show the current VM name', flags: 'p',
    cmd: (mons, mon) => {
      const n = mons.machine.name();
      if (n !== null) monitorPrintf(mons, mon, utf8ToBytes(n) + '\n');
    } },
];
