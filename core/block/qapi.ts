// What the monitor shows about block devices (block/qapi.c, block/monitor/block-hmp-cmds.c,
// util/cutils.c): query-block / query-named-block-nodes data, `info block` text, and the
// snapshot listing line format of bdrv_snapshot_dump with size_to_str. Texts end in "\n"; the
// monitor turns that into "\r\n". Dates are formatted from seconds plus a UTC offset the caller
// supplies (the kernel has no time zone; QEMU uses the host's local time).

import type { LoopMachine } from '../loop/index.ts';
import { type BlockDriverState, bdrvGetLength, blockState } from './block.ts';
import type { BlockBackend } from './block-backend.ts';
import type { QEMUSnapshotInfo } from './qcow2-snapshot.ts';
import type { BlockResult } from './errno.ts';
import { bdrvAllFindVmstateBs, bdrvAllHasSnapshot, bdrvCanSnapshot, bdrvSnapshotList } from './snapshot.ts';
import { bdrvNextAll } from './block.ts';

/** @qemu qapi SnapshotInfo */
export interface SnapshotInfoQapi {
  id: string;
  name: string;
  'vm-state-size': number;
  'date-sec': number;
  'date-nsec': number;
  'vm-clock-sec': number;
  'vm-clock-nsec': number;
  icount?: number;
}

/** @qemu qapi ImageInfo (the members detvm fills) */
export interface ImageInfo {
  filename: string;
  format: string;
  'dirty-flag'?: boolean;
  'actual-size'?: number;
  'virtual-size': number;
  'cluster-size'?: number;
  snapshots?: SnapshotInfoQapi[];
  'format-specific'?: { type: string; data: Record<string, string | number | boolean> };
}

/** @qemu qapi BlockDeviceInfo */
export interface BlockDeviceInfo {
  file: string;
  'node-name': string;
  ro: boolean;
  drv: string;
  backing_file_depth: number;
  encrypted: boolean;
  detect_zeroes: string;
  bps: number;
  bps_rd: number;
  bps_wr: number;
  iops: number;
  iops_rd: number;
  iops_wr: number;
  image: ImageInfo;
  cache: { writeback: boolean; direct: boolean; 'no-flush': boolean };
  write_threshold: number;
}

/** @qemu qapi BlockInfo */
export interface BlockInfo {
  device: string;
  qdev?: string;
  type: string;
  removable: boolean;
  locked: boolean;
  inserted?: BlockDeviceInfo;
  tray_open?: boolean;
  'io-status'?: string;
}

/** @qemu block/qapi.c bdrv_query_snapshot_info_list entry */
export function snapshotInfoQapi(sn: QEMUSnapshotInfo): SnapshotInfoQapi {
  const out: SnapshotInfoQapi = {
    id: sn.idStr, name: sn.name, 'vm-state-size': sn.vmStateSize, 'date-sec': sn.dateSec,
    'date-nsec': sn.dateNsec, 'vm-clock-sec': Math.floor(sn.vmClockNsec / 1e9), 'vm-clock-nsec': sn.vmClockNsec % 1e9,
  };
  if (sn.icount >= 0) out.icount = sn.icount;
  return out;
}

/** @qemu block/qapi.c bdrv_query_image_info */
export function bdrvQueryImageInfo(bs: BlockDriverState): ImageInfo {
  const info: ImageInfo = { filename: bs.filename, format: bs.drv.formatName, 'virtual-size': bdrvGetLength(bs) };
  const proto = bs.file ?? bs;
  if (proto.opaque.kind === 'file') {
    // bdrv_get_allocated_file_size: what the file takes on disk (st_blocks) where the host says.
    const f = proto.opaque.file;
    info['actual-size'] = f.allocatedSize ? f.allocatedSize() : f.size();
  }
  if (bs.opaque.kind === 'qcow2') {
    info['cluster-size'] = bs.opaque.s.clusterSize;
    info['dirty-flag'] = false;
    const sns = bs.drv.snapshots?.list(bs) ?? [];
    if (sns.length > 0) info.snapshots = sns.map(snapshotInfoQapi);
  }
  const spec = bs.drv.specificInfo(bs);
  if (spec) info['format-specific'] = { type: bs.drv.formatName, data: spec };
  return info;
}

/** @qemu block/qapi.c bdrv_block_device_info */
export function bdrvBlockDeviceInfo(bs: BlockDriverState): BlockDeviceInfo {
  return {
    file: bs.filename, 'node-name': bs.nodeName, ro: bs.readOnly, drv: bs.drv.formatName, backing_file_depth: 0,
    encrypted: false, detect_zeroes: bs.detectZeroes, bps: 0, bps_rd: 0, bps_wr: 0, iops: 0, iops_rd: 0, iops_wr: 0,
    image: bdrvQueryImageInfo(bs),
    cache: { writeback: bs.cache.writeback, direct: bs.cache.direct, 'no-flush': bs.cache.noFlush },
    write_threshold: 0,
  };
}

/**
 * A drive no device uses counts as removable (blk_dev_has_removable_media: no device, or one
 * with a change_media_cb; virtio-blk has none), never locked, and has no tray.
 * @qemu block/qapi.c bdrv_query_info
 */
export function blkQueryInfo(blk: BlockBackend): BlockInfo {
  const info: BlockInfo = { device: blk.name, type: 'unknown', removable: blk.dev === null, locked: false };
  if (blk.dev !== null) info.qdev = blk.dev;
  if (blk.root) info.inserted = bdrvBlockDeviceInfo(blk.root);
  if (blk.ioStatusEnabled) info['io-status'] = blk.ioStatus;
  return info;
}

/** @qemu block/qapi.c qmp_query_block */
export function qmpQueryBlock(m: LoopMachine): BlockInfo[] {
  return blockState(m).backends.map(blkQueryInfo);
}

/**
 * Newest node first: bdrv_named_nodes_list prepends each node of graph_bdrv_states.
 * @qemu block/qapi.c qmp_query_named_block_nodes (flat)
 */
export function qmpQueryNamedBlockNodes(m: LoopMachine): BlockDeviceInfo[] {
  return blockState(m).namedNodes.map(bdrvBlockDeviceInfo).reverse();
}

/** @qemu block/monitor/block-hmp-cmds.c print_block_info */
function printBlockInfo(info: BlockInfo | null, inserted: BlockDeviceInfo | null, verbose: boolean, utcOffsetSec: number): string {
  let out: string;
  if (info && info.device !== '') {
    out = info.device + (inserted ? ` (${inserted['node-name']})` : '');
  } else {
    out = inserted ? inserted['node-name'] : info?.qdev ?? '<anonymous>';
  }
  if (inserted) out += `: ${inserted.file} (${inserted.drv}${inserted.ro ? ', read-only' : ''}${inserted.encrypted ? ', encrypted' : ''})\n`;
  else out += ': [not inserted]\n';
  if (info) {
    if (info.qdev !== undefined) out += `    Attached to:      ${info.qdev}\n`;
    if (info['io-status'] !== undefined && info['io-status'] !== 'ok') out += `    I/O status:       ${info['io-status']}\n`;
    if (info.removable) {
      out += `    Removable device: ${info.locked ? '' : 'not '}locked, tray ${info.tray_open ? 'open' : 'closed'}\n`;
    }
  }
  if (!inserted) return out;
  const c = inserted.cache;
  out += `    Cache mode:       ${c.writeback ? 'writeback' : 'writethrough'}${c.direct ? ', direct' : ''}${c['no-flush'] ? ', ignore flushes' : ''}\n`;
  if (inserted.detect_zeroes !== 'off') out += `    Detect zeroes:    ${inserted.detect_zeroes}\n`;
  if (verbose) out += `\nImages:\n${bdrvImageInfoDump(inserted.image, utcOffsetSec)}`;
  return out;
}

/**
 * An image's description as `qemu-img info` and `info block -v` print it (no backing chains in
 * detvm). @qemu block/qapi.c bdrv_image_info_dump
 */
export function bdrvImageInfoDump(info: ImageInfo, utcOffsetSec = 0): string {
  const size = info['virtual-size'];
  let out = `image: ${info.filename}\nfile format: ${info.format}\nvirtual size: ${sizeToStr(size)} (${size} bytes)\n`;
  out += `disk size: ${info['actual-size'] !== undefined ? sizeToStr(info['actual-size']) : 'unavailable'}\n`;
  if (info['cluster-size'] !== undefined) out += `cluster_size: ${info['cluster-size']}\n`;
  if (info['dirty-flag']) out += 'cleanly shut down: no\n';
  if (info.snapshots && info.snapshots.length > 0) {
    out += `Snapshot list:\n${SNAPSHOT_DUMP_HEADER}\n`;
    for (const sn of info.snapshots) {
      out += bdrvSnapshotDump({
        idStr: sn.id, name: sn.name, vmStateSize: sn['vm-state-size'], dateSec: sn['date-sec'], dateNsec: sn['date-nsec'],
        vmClockNsec: sn['vm-clock-sec'] * 1e9 + sn['vm-clock-nsec'], icount: sn.icount ?? -1,
      }, utcOffsetSec) + '\n';
    }
  }
  const spec = info['format-specific'];
  if (spec) {
    // dump_qdict: each key with its dashes as spaces, four spaces in.
    out += 'Format specific information:\n';
    for (const [k, v] of Object.entries(spec.data)) out += `    ${k.replace(/-/g, ' ')}: ${String(v)}\n`;
  }
  return out;
}

/**
 * The text of `info block [-n] [-v] [device]`, lines ending in "\n".
 * @qemu block/monitor/block-hmp-cmds.c hmp_info_block
 */
export function hmpInfoBlockText(m: LoopMachine, device: string | null = null, nodes = false, verbose = false, utcOffsetSec = 0): string {
  let out = '';
  let printed = false;
  if (!nodes) {
    const list = qmpQueryBlock(m);
    list.forEach((info, i) => {
      if (device !== null && device !== info.device) return;
      if (i > 0) out += '\n';
      out += printBlockInfo(info, info.inserted ?? null, verbose && info.inserted !== undefined, utcOffsetSec);
      printed = true;
    });
  }
  if ((device === null && !nodes) || printed) return out;
  qmpQueryNamedBlockNodes(m).forEach((bi, i) => {
    if (device !== null && device !== bi['node-name']) return;
    if (i > 0) out += '\n';
    out += printBlockInfo(null, bi, verbose, utcOffsetSec);
  });
  return out;
}

/** printf("%0.3g") for the values size_to_str produces (0 <= v < 1000). */
function fmtG3(v: number): string {
  if (v === 0) return '0';
  let s = v.toPrecision(3);
  if (s.includes('e')) return s;
  if (s.includes('.')) s = s.replace(/0+$/, '').replace(/\.$/, '');
  return s;
}

/** "%0.3g %sB" with binary prefixes, switching unit at 1000. @qemu util/cutils.c size_to_str */
export function sizeToStr(val: number): string {
  const suffixes = ['', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei'];
  // frexp(val / (1000/1024)) gives exponent e with val*1.024 in [2^(e-1), 2^e).
  const x = val / (1000 / 1024);
  const e = x === 0 ? 0 : Math.floor(Math.log2(x)) + 1;
  const i = Math.max(0, Math.floor((e - 1) / 10));
  return `${fmtG3(val / 2 ** (i * 10))} ${suffixes[i]}B`;
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** "%Y-%m-%d %H:%M:%S" of `sec` since the epoch at `utcOffsetSec` east of UTC (no Date object). */
export function formatDateTime(sec: number, utcOffsetSec = 0): string {
  const t = sec + utcOffsetSec;
  const days = Math.floor(t / 86400);
  const rem = t - days * 86400;
  // civil_from_days (H. Hinnant): days since 1970-01-01 to year/month/day.
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const mo = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (mo <= 2 ? 1 : 0);
  return `${y}-${pad2(mo)}-${pad2(d)} ${pad2(Math.floor(rem / 3600))}:${pad2(Math.floor(rem / 60) % 60)}:${pad2(rem % 60)}`;
}

/** The header line of a snapshot listing (no newline). @qemu block/qapi.c bdrv_snapshot_dump(NULL), 7.2 */
export const SNAPSHOT_DUMP_HEADER = `${'ID'.padEnd(10)}${'TAG'.padEnd(17)}${'VM SIZE'.padStart(8)}${'DATE'.padStart(20)}${'VM CLOCK'.padStart(13)}${'ICOUNT'.padStart(11)}`;

/** One snapshot line (no newline), 7.2 widths. @qemu block/qapi.c bdrv_snapshot_dump */
export function bdrvSnapshotDump(sn: QEMUSnapshotInfo, utcOffsetSec = 0): string {
  const secs = Math.floor(sn.vmClockNsec / 1e9);
  const clock = `${pad2(Math.floor(secs / 3600))}:${pad2(Math.floor(secs / 60) % 60)}:${pad2(secs % 60)}.`
    + String(Math.floor(sn.vmClockNsec / 1e6) % 1000).padStart(3, '0');
  const icount = sn.icount >= 0 ? String(sn.icount) : '';
  return `${sn.idStr.padEnd(9)} ${sn.name.padEnd(16)} ${sizeToStr(sn.vmStateSize).padStart(8)}`
    + `${formatDateTime(sn.dateSec, utcOffsetSec).padStart(20)}${clock.padStart(13)}${icount.padStart(11)}`;
}

/** `qemu-img snapshot -l`'s output for a node. @qemu qemu-img.c dump_snapshots */
export function qemuImgSnapshotListText(sns: readonly QEMUSnapshotInfo[], utcOffsetSec = 0): string {
  if (sns.length === 0) return '';
  return `Snapshot list:\n${SNAPSHOT_DUMP_HEADER}\n${sns.map((sn) => bdrvSnapshotDump(sn, utcOffsetSec) + '\n').join('')}`;
}

/**
 * The text of `info snapshots` (7.2), lines ending in "\n": snapshots present on every disk
 * (their id shown as "--"), then per disk the ones that are not. Without a disk that can hold
 * the VM state it fails with QEMU's message, which 7.2 prints without "Error: ".
 * `utcOffsetSec` is the host's local time offset for the DATE column.
 * @qemu block/monitor/block-hmp-cmds.c hmp_info_snapshots
 */
export function hmpInfoSnapshotsText(m: LoopMachine, utcOffsetSec = 0): BlockResult<string> {
  const vm = bdrvAllFindVmstateBs(m);
  if (!vm.ok) return vm;
  const tab = bdrvSnapshotList(vm.value);
  if (!tab.ok) return { ok: true, value: `bdrv_snapshot_list: error ${-tab.errno}\n` };
  const images: Array<{ name: string; sns: QEMUSnapshotInfo[] }> = [];
  for (const bs of bdrvNextAll(m)) {
    if (!bdrvCanSnapshot(bs)) continue;
    const l = bdrvSnapshotList(bs);
    if (l.ok && l.value.length > 0) images.push({ name: bs.blk?.name ?? '', sns: [...l.value] });
  }
  if (images.length === 0) return { ok: true, value: 'There is no snapshot available.\n' };
  const global: QEMUSnapshotInfo[] = [];
  for (const sn of tab.value) {
    const has = bdrvAllHasSnapshot(m, sn.name);
    if (!has.ok || !has.value) continue;
    global.push(sn);
    for (const im of images) im.sns = im.sns.filter((x) => x.name !== sn.name);
  }
  let out = 'List of snapshots present on all disks:\n';
  if (global.length > 0) {
    out += `${SNAPSHOT_DUMP_HEADER}\n`;
    for (const sn of global) out += `${bdrvSnapshotDump({ ...sn, idStr: '--' }, utcOffsetSec)}\n`;
  } else {
    out += 'None\n';
  }
  for (const im of images) {
    if (im.sns.length === 0) continue;
    out += `\nList of partial (non-loadable) snapshots on '${im.name}':\n${SNAPSHOT_DUMP_HEADER}\n`;
    for (const sn of im.sns) out += `${bdrvSnapshotDump(sn, utcOffsetSec)}\n`;
  }
  return { ok: true, value: out };
}
