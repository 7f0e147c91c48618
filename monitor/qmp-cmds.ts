// QMP commands of the run state, vCPUs, chardevs and HMP passthrough (monitor/qmp-cmds.c,
// softmmu/runstate.c, chardev/char.c, monitor/misc.c): each checks what QEMU checks, with its
// error texts, and acts through the MonitorMachine. HMP handlers call these, as QEMU's do.

import type { Monitor, MonitorSet } from './monitor.ts';
import { monitorSetCpu } from './monitor.ts';
import { charBackendCreate } from '../core/char/index.ts';
import { type QObject, qdictFrom, qnumInt, utf8ToBytes, bytesToArray, arrayToBytes } from './qobject.ts';
import { type QmpCommand, type QmpResult, QMP_OK, qmpFail } from './qmp-dispatch.ts';
import { T_INT, T_STR, argInt, argStr } from './qapi-visit.ts';
import { handleHmpCommand, hmpMonitorCreate } from './hmp.ts';

/** @qemu monitor/qmp-cmds.c qmp_stop */
export function qmpStop(mons: MonitorSet): QmpResult {
  const mc = mons.machine;
  if (mc.dumpInProgress()) return qmpFail('There is a dump in process, please wait.');
  if (mc.runstate() === 'inmigrate') mc.setAutostart(false);
  else mc.vmStop('paused');
  return QMP_OK;
}

/** @qemu monitor/qmp-cmds.c qmp_cont */
export function qmpCont(mons: MonitorSet): QmpResult {
  const mc = mons.machine;
  if (mc.dumpInProgress()) return qmpFail('There is a dump in process, please wait.');
  if (mc.runstateNeedsReset()) return qmpFail('Resetting the Virtual Machine is required');
  const rs = mc.runstate();
  if (rs === 'suspended') return QMP_OK;
  if (rs === 'finish-migrate') return qmpFail('Migration is not finalized yet');
  const err = mc.blockResetAndActivateAll();
  if (err !== null) return qmpFail(err);
  if (mc.runstate() === 'inmigrate') mc.setAutostart(true);
  else mc.vmStart();
  return QMP_OK;
}

/** @qemu monitor/qmp-cmds.c qmp_system_reset */
export function qmpSystemReset(mons: MonitorSet): QmpResult {
  mons.machine.systemResetRequest('host-qmp-system-reset');
  return QMP_OK;
}

/** @qemu softmmu/runstate.c qmp_quit */
export function qmpQuit(mons: MonitorSet): QmpResult {
  mons.machine.systemShutdownRequest('host-qmp-quit');
  return QMP_OK;
}

/** StatusInfo in schema order (running, singlestep, status). @qemu qmp_query_status */
export function qmpQueryStatus(mons: MonitorSet): { running: boolean; singlestep: boolean; status: string } {
  const mc = mons.machine;
  return { running: mc.runstateIsRunning(), singlestep: mc.singlestep(), status: mc.runstate() };
}

function queryStatusValue(mons: MonitorSet): QObject {
  const s = qmpQueryStatus(mons);
  return qdictFrom([['running', s.running], ['singlestep', s.singlestep], ['status', s.status]]);
}

/** CpuInfoFast list. @qemu hw/core/machine-qmp-cmds.c qmp_query_cpus_fast */
function queryCpusFastValue(mons: MonitorSet): QObject {
  return mons.machine.cpus().map((c) => {
    const d = qdictFrom([['cpu-index', qnumInt(c.cpuIndex)], ['qom-path', utf8ToBytes(c.qomPath)], ['thread-id', qnumInt(c.threadId)]]);
    if (c.props) {
      d.map.set('props', qdictFrom(Object.entries(c.props).map(([k, v]): [string, QObject] =>
        [k, typeof v === 'number' ? qnumInt(v) : utf8ToBytes(v)])));
    }
    d.map.set('target', c.target);
    return d;
  });
}

/** ChardevInfo list. @qemu chardev/char.c qmp_query_chardev */
function queryChardevValue(mons: MonitorSet): QObject {
  return mons.machine.chardevs().map((c) =>
    qdictFrom([['label', utf8ToBytes(c.label)], ['filename', utf8ToBytes(c.filename)], ['frontend-open', c.frontendOpen]]));
}

const BASE64_VALID = /^[A-Za-z0-9+/=\n]*$/;

/** @qemu chardev/char-ringbuf.c qmp_ringbuf_write (data is a byte string) */
export function qmpRingbufWrite(mons: MonitorSet, device: string, data: string, format: string | undefined): QmpResult {
  const mc = mons.machine;
  const err = mc.ringbufLookup(device);
  if (err !== null) return qmpFail(err);
  let bytes: Uint8Array;
  if (format === 'base64') {
    const nul = data.indexOf('\0');
    const text = nul < 0 ? data : data.slice(0, nul);
    if (!BASE64_VALID.test(text)) return qmpFail('Base64 data contains invalid characters');
    bytes = new Uint8Array(Buffer.from(text, 'base64'));
  } else {
    const nul = data.indexOf('\0');
    bytes = bytesToArray(nul < 0 ? data : data.slice(0, nul));
  }
  if (!mc.ringbufWrite(device, bytes)) return qmpFail(`Failed to write to device ${device}`);
  return QMP_OK;
}

/** Returns the data as a byte string (utf8: raw bytes; base64: encoded). @qemu qmp_ringbuf_read */
export function qmpRingbufRead(mons: MonitorSet, device: string, size: bigint, format: string | undefined): { ok: true; data: string } | { ok: false; desc: string } {
  const mc = mons.machine;
  const err = mc.ringbufLookup(device);
  if (err !== null) return { ok: false, desc: err };
  if (size <= 0n) return { ok: false, desc: 'size must be greater than zero' };
  const n = size > 0x7fffffffn ? 0x7fffffff : Number(size);
  const bytes = mc.ringbufRead(device, n);
  if (format === 'base64') return { ok: true, data: Buffer.from(bytes).toString('base64') };
  return { ok: true, data: arrayToBytes(bytes) };
}

/**
 * Run an HMP command line on a temporary monitor and return its output.
 * @qemu monitor/misc.c qmp_human_monitor_command
 */
export function qmpHumanMonitorCommand(mons: MonitorSet, commandLine: string, cpuIndex: bigint | undefined): QmpResult {
  const hmp = hmpMonitorCreate(mons, charBackendCreate(), false, true);
  // The temporary monitor is not in mon_list, as in QEMU.
  if (cpuIndex !== undefined) {
    const idx = cpuIndex >= -(1n << 31n) && cpuIndex < 1n << 31n ? Number(cpuIndex) : -1;
    if (monitorSetCpu(mons, hmp, idx) < 0) return qmpFail("Parameter 'cpu-index' expects a CPU number");
  }
  handleHmpCommand(mons, hmp, commandLine);
  return { ok: true, value: hmp.outbuf };
}

const DATA_FORMAT = { kind: 'enum', values: ['utf8', 'base64'] } as const;

/** The commands of this file, for the full table. */
export const QMP_MACHINE_COMMANDS: readonly QmpCommand[] = [
  { name: 'query-status', args: [], allowPreconfig: true, fn: (mons) => ({ ok: true, value: queryStatusValue(mons) }) },
  { name: 'query-name', args: [], allowPreconfig: true, fn: (mons) => {
    const n = mons.machine.name();
    return { ok: true, value: n === null ? qdictFrom([]) : qdictFrom([['name', utf8ToBytes(n)]]) };
  } },
  { name: 'query-cpus-fast', args: [], fn: (mons) => ({ ok: true, value: queryCpusFastValue(mons) }) },
  { name: 'query-chardev', args: [], allowPreconfig: true, fn: (mons) => ({ ok: true, value: queryChardevValue(mons) }) },
  { name: 'stop', args: [], fn: (mons) => qmpStop(mons) },
  { name: 'cont', args: [], fn: (mons) => qmpCont(mons) },
  { name: 'system_reset', args: [], fn: (mons) => qmpSystemReset(mons) },
  { name: 'quit', args: [], allowPreconfig: true, fn: (mons) => qmpQuit(mons) },
  {
    name: 'ringbuf-write',
    args: [{ name: 'device', type: T_STR }, { name: 'data', type: T_STR }, { name: 'format', type: DATA_FORMAT, optional: true }],
    fn: (mons, _mon: Monitor, a) => qmpRingbufWrite(mons, argStr(a, 'device')!, argStr(a, 'data')!, argStr(a, 'format')),
  },
  {
    name: 'ringbuf-read',
    args: [{ name: 'device', type: T_STR }, { name: 'size', type: T_INT }, { name: 'format', type: DATA_FORMAT, optional: true }],
    fn: (mons, _mon, a) => {
      const r = qmpRingbufRead(mons, argStr(a, 'device')!, argInt(a, 'size')!, argStr(a, 'format'));
      return r.ok ? { ok: true, value: r.data } : qmpFail(r.desc);
    },
  },
  {
    name: 'human-monitor-command',
    args: [{ name: 'command-line', type: T_STR }, { name: 'cpu-index', type: T_INT, optional: true }],
    fn: (mons, _mon, a) => qmpHumanMonitorCommand(mons, argStr(a, 'command-line')!, argInt(a, 'cpu-index')),
  },
];
