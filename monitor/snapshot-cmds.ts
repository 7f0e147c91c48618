// The snapshot commands (hmp-commands.hx savevm/loadvm/delvm, hmp-commands-info.hx snapshots,
// handlers in migration/migration-hmp-cmds.c and block/monitor/block-hmp-cmds.c; QMP
// snapshot-save/-load/-delete, query-jobs and job-dismiss from qapi/migration.json and
// qapi/job.json), with QEMU 7.2's args_type, params, help and texts; and the block device views
// they rely on (info block, query-block, query-named-block-nodes from qapi/block-core.json).
// The handlers act through MonitorSnapshotOps, which snapshotMonitorOps implements over
// core/snapshot and core/block.

import {
  type Job, type SnapshotMachine, type SnapshotResult, deleteSnapshot, jobDismiss, jobQueryAll, loadSnapshot,
  qmpSnapshotDelete, qmpSnapshotLoad, qmpSnapshotSave, saveSnapshot, snapshotState,
} from '../core/snapshot/index.ts';
import { hmpInfoBlockText, hmpInfoSnapshotsText, qmpQueryBlock, qmpQueryNamedBlockNodes } from '../core/block/index.ts';
import { runstateIsRunning, vmStart, vmStop } from '../core/system/index.ts';
import { TRACE_CONTROL, traceSpan } from '../core/trace/index.ts';
import type { Monitor, MonitorSet } from './monitor.ts';
import { errorReport, monitorPrintf } from './monitor.ts';
import { type HmpArgs, hmpRegisterCommands } from './hmp-commands.ts';
import { snapshotTagCompletion } from './hmp-completion.ts';
import { type QmpResult, QMP_OK, qmpFail, qmpRegisterCommands } from './qmp-dispatch.ts';
import { type QapiArgs, type QapiType, T_BOOL, T_STR, argList, argStr } from './qapi-visit.ts';
import { type QObject, qdictFrom, qnumInt, qobjectFromPlain, utf8ToBytes } from './qobject.ts';

/** What the snapshot commands need from the machine. */
export interface MonitorSnapshotOps {
  /** @qemu hmp_savevm: save_snapshot(name, overwrite=true) */
  savevm(name: string | null): SnapshotResult;
  /** @qemu hmp_loadvm: vm_stop(restore-vm), load_snapshot, vm_start if it ran and the load worked */
  loadvm(name: string): SnapshotResult;
  /** @qemu hmp_delvm: delete_snapshot */
  delvm(name: string): SnapshotResult;
  /** The text of `info snapshots`, or the error it prints. */
  infoSnapshots(): { ok: true; text: string } | { ok: false; error: string };
  snapshotSave(jobId: string, tag: string, vmstate: string, devices: string[]): string | null;
  snapshotLoad(jobId: string, tag: string, vmstate: string, devices: string[]): string | null;
  snapshotDelete(jobId: string, tag: string, devices: string[]): string | null;
  queryJobs(): readonly Job[];
  jobDismiss(id: string): string | null;
  /** The text of `info block [-n] [-v] [device]`. @qemu hmp_info_block */
  infoBlock(device: string | null, nodes: boolean, verbose: boolean): string;
  /** @qemu qmp_query_block (QAPI BlockInfo list, as plain data) */
  queryBlock(): unknown[];
  /** @qemu qmp_query_named_block_nodes */
  queryNamedBlockNodes(): unknown[];
}

/** The ops over the kernel's snapshot layer. */
export function snapshotMonitorOps(m: SnapshotMachine): MonitorSnapshotOps {
  return {
    savevm: (name) => saveSnapshot(m, name, true),
    loadvm: (name) => {
      const saved = runstateIsRunning(m);
      vmStop(m, 'restore-vm');
      const r = loadSnapshot(m, name);
      if (r.ok && saved) vmStart(m);
      return r;
    },
    delvm: (name) => deleteSnapshot(m, name),
    infoSnapshots: () => {
      const r = hmpInfoSnapshotsText(m, snapshotState(m).utcOffsetSec);
      return r.ok ? { ok: true, text: r.value } : { ok: false, error: r.error };
    },
    snapshotSave: (id, tag, vmstate, devices) => qmpSnapshotSave(m, id, tag, vmstate, devices),
    snapshotLoad: (id, tag, vmstate, devices) => qmpSnapshotLoad(m, id, tag, vmstate, devices),
    snapshotDelete: (id, tag, devices) => qmpSnapshotDelete(m, id, tag, devices),
    queryJobs: () => jobQueryAll(m),
    jobDismiss: (id) => jobDismiss(m, id),
    infoBlock: (device, nodes, verbose) => hmpInfoBlockText(m, device, nodes, verbose, snapshotState(m).utcOffsetSec),
    queryBlock: () => qmpQueryBlock(m),
    queryNamedBlockNodes: () => qmpQueryNamedBlockNodes(m),
  };
}

/** error_report lines first, then hmp_handle_error's "Error: ...". */
function hmpSnapshotResult(mons: MonitorSet, r: SnapshotResult): void {
  for (const line of r.reports) errorReport(mons, line);
  if (!r.ok && r.error !== '') errorReport(mons, `Error: ${r.error}`);
}

function nameArg(args: HmpArgs): string | null {
  const v = args.get('name');
  return typeof v === 'string' ? v : null;
}

/** A QMP byte string as JavaScript text. */
function text(s: string): string {
  return Buffer.from(s, 'latin1').toString('utf8');
}

const T_STR_LIST: QapiType = { kind: 'list', of: T_STR };

function strList(a: QapiArgs, name: string): string[] {
  return (argList(a, name) ?? []).map((v) => text(v as string));
}

function arg(a: QapiArgs, name: string): string {
  return text(argStr(a, name) ?? '');
}

function started(err: string | null): QmpResult {
  return err === null ? QMP_OK : qmpFail(err);
}

/** @qemu job-qmp.c job_query_single */
function jobInfo(j: Job): QObject {
  const pairs: [string, QObject][] = [
    ['id', utf8ToBytes(j.id)], ['type', j.type], ['status', j.status],
    ['current-progress', qnumInt(j.progressCurrent)], ['total-progress', qnumInt(j.progressTotal)],
  ];
  if (j.error !== null) pairs.push(['error', utf8ToBytes(j.error)]);
  return qdictFrom(pairs);
}

/**
 * Register savevm, loadvm, delvm, info snapshots, info block and the QMP snapshot, job and
 * block query commands.
 */
export function registerSnapshotCommands(mons: MonitorSet, ops: MonitorSnapshotOps): void {
  const span = <T>(name: string, fn: () => T): T => traceSpan(mons.m, TRACE_CONTROL, name, undefined, fn);
  hmpRegisterCommands(mons, 'main', [
    { name: 'savevm', argsType: 'name:s?', params: 'tag',
      help: 'save a VM snapshot. If no tag is provided, a new snapshot is created',
      cmd: (ms, _mon, a) => hmpSnapshotResult(ms, span('hmp_savevm', () => ops.savevm(nameArg(a)))) },
    { name: 'loadvm', argsType: 'name:s', params: 'tag', help: 'restore a VM snapshot from its tag',
      commandCompletion: snapshotTagCompletion,
      cmd: (ms, _mon, a) => hmpSnapshotResult(ms, span('hmp_loadvm', () => ops.loadvm(nameArg(a) ?? ''))) },
    { name: 'delvm', argsType: 'name:s', params: 'tag', help: 'delete a VM snapshot from its tag',
      commandCompletion: snapshotTagCompletion,
      cmd: (ms, _mon, a) => hmpSnapshotResult(ms, span('hmp_delvm', () => ops.delvm(nameArg(a) ?? ''))) },
  ]);
  hmpRegisterCommands(mons, 'info', [
    { name: 'block', argsType: 'nodes:-n,verbose:-v,device:B?', params: '[-n] [-v] [device]',
      help: 'show info of one block device or all block devices (-n: show named nodes; -v: show details)',
      cmd: (ms: MonitorSet, mon: Monitor, a: HmpArgs) => {
        const device = a.get('device');
        const text = span('hmp_info_block', () => ops.infoBlock(typeof device === 'string' ? device : null,
          a.get('nodes') === true, a.get('verbose') === true));
        monitorPrintf(ms, mon, utf8ToBytes(text));
      } },
    { name: 'snapshots', argsType: '', params: '', help: 'show the currently saved VM snapshots',
      cmd: (ms: MonitorSet, mon: Monitor) => {
        const r = span('hmp_info_snapshots', () => ops.infoSnapshots());
        if (r.ok) monitorPrintf(ms, mon, r.text);
        else errorReport(ms, r.error);
      } },
  ]);
  qmpRegisterCommands(mons, [
    { name: 'snapshot-save',
      args: [{ name: 'job-id', type: T_STR }, { name: 'tag', type: T_STR }, { name: 'vmstate', type: T_STR },
        { name: 'devices', type: T_STR_LIST }],
      fn: (_ms, _mon, a) => started(ops.snapshotSave(arg(a, 'job-id'), arg(a, 'tag'), arg(a, 'vmstate'), strList(a, 'devices'))) },
    { name: 'snapshot-load',
      args: [{ name: 'job-id', type: T_STR }, { name: 'tag', type: T_STR }, { name: 'vmstate', type: T_STR },
        { name: 'devices', type: T_STR_LIST }],
      fn: (_ms, _mon, a) => started(ops.snapshotLoad(arg(a, 'job-id'), arg(a, 'tag'), arg(a, 'vmstate'), strList(a, 'devices'))) },
    { name: 'snapshot-delete',
      args: [{ name: 'job-id', type: T_STR }, { name: 'tag', type: T_STR }, { name: 'devices', type: T_STR_LIST }],
      fn: (_ms, _mon, a) => started(ops.snapshotDelete(arg(a, 'job-id'), arg(a, 'tag'), strList(a, 'devices'))) },
    { name: 'query-jobs', args: [], fn: () => ({ ok: true, value: ops.queryJobs().map(jobInfo) }) },
    { name: 'query-block', args: [], fn: () => ({ ok: true, value: qobjectFromPlain(ops.queryBlock()) }) },
    { name: 'query-named-block-nodes', args: [{ name: 'flat', type: T_BOOL, optional: true }],
      fn: () => ({ ok: true, value: qobjectFromPlain(ops.queryNamedBlockNodes()) }) },
    { name: 'job-dismiss', args: [{ name: 'id', type: T_STR }], fn: (_ms, _mon, a) => started(ops.jobDismiss(arg(a, 'id'))) },
  ]);
}
