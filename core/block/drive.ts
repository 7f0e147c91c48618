// The -drive option (blockdev.c drive_new/blockdev_init with QemuOpts parsing): split the option
// string, check each value with QEMU's texts, then open the image and create the backend.
// Supported: file, format, if (none, virtio), id, node-name, read-only, cache (and cache.*),
// discard, detect-zeroes, index/bus/unit, media=disk, snapshot=off, werror, rerror, aio, serial,
// copy-on-read=off. Any other key is refused the way the format driver refuses it.

import type { LoopMachine } from '../loop/index.ts';
import { type BlockResult, EINVAL, blockFail, blockTry } from './errno.ts';
import { type BlockdevCacheInfo, type DetectZeroes, bdrvClose, bdrvOpen, blockState, idWellformed } from './block.ts';
import { type BlockBackend, blkNew } from './block-backend.ts';

/** Parsed -drive options. */
export interface DriveOptions {
  id: string | null;
  file: string | null;
  format: string | null;
  ifType: string | null;
  nodeName: string | null;
  readOnly: boolean;
  cache: BlockdevCacheInfo;
  detectZeroes: DetectZeroes;
  discard: 'ignore' | 'unmap';
  index: number | null;
  bus: number | null;
  unit: number | null;
  serial: string | null;
  werror: string;
  rerror: string;
  /** Keys -drive does not know, refused once the format is known (after probing). */
  unknown: string[];
}

const BOOL_KEYS = new Set(['read-only', 'cache.writeback', 'cache.direct', 'cache.no-flush', 'snapshot', 'copy-on-read']);
const KNOWN = new Set([
  'file', 'format', 'if', 'id', 'node-name', 'read-only', 'cache', 'cache.writeback', 'cache.direct',
  'cache.no-flush', 'discard', 'detect-zeroes', 'index', 'bus', 'unit', 'media', 'snapshot', 'werror',
  'rerror', 'aio', 'serial', 'copy-on-read',
]);
const IF_NAMES = ['none', 'ide', 'scsi', 'floppy', 'pflash', 'mtd', 'sd', 'virtio', 'xen'];

/**
 * Split a QemuOpts string: "k=v,k2=v2", ",," stands for a comma inside a value, a bare key means
 * "key=on". @qemu util/qemu-option.c opts_do_parse
 */
export function qemuOptsSplit(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  let i = 0;
  while (i < text.length) {
    let key = '';
    while (i < text.length && text[i] !== '=' && text[i] !== ',') key += text[i++];
    let value = 'on';
    if (text[i] === '=') {
      i++;
      value = '';
      while (i < text.length) {
        if (text[i] === ',') {
          if (text[i + 1] !== ',') break;
          i++;
        }
        value += text[i++];
      }
    }
    i++; // the separating comma
    if (key !== '') out.push([key, value]);
  }
  return out;
}

function parseBool(key: string, v: string): boolean {
  if (v === 'on' || v === 'yes' || v === 'true') return true;
  if (v === 'off' || v === 'no' || v === 'false') return false;
  return blockFail(EINVAL, `Parameter '${key}' expects 'on' or 'off'`);
}

function parseUint(key: string, v: string): number {
  if (!/^\d+$/.test(v)) blockFail(EINVAL, `Parameter '${key}' expects a non-negative number`);
  return Number(v);
}

/** @qemu block.c bdrv_parse_cache_mode */
function parseCacheMode(v: string): BlockdevCacheInfo {
  switch (v) {
    case 'off':
    case 'none':
      return { writeback: true, direct: true, noFlush: false };
    case 'directsync':
      return { writeback: false, direct: true, noFlush: false };
    case 'writeback':
      return { writeback: true, direct: false, noFlush: false };
    case 'unsafe':
      return { writeback: true, direct: false, noFlush: true };
    case 'writethrough':
      return { writeback: false, direct: false, noFlush: false };
    default:
      return blockFail(EINVAL, 'invalid cache option');
  }
}

/** Parse the argument of `-drive`. Errors carry QEMU's texts. */
export function driveParse(text: string): BlockResult<DriveOptions> {
  return blockTry(() => {
    const o: DriveOptions = {
      id: null, file: null, format: null, ifType: null, nodeName: null, readOnly: false,
      cache: { writeback: true, direct: false, noFlush: false }, detectZeroes: 'off', discard: 'ignore',
      index: null, bus: null, unit: null, serial: null, werror: 'enospc', rerror: 'report', unknown: [],
    };
    for (const [k, v] of qemuOptsSplit(text)) {
      if (!KNOWN.has(k)) {
        o.unknown.push(k);
        continue;
      }
      if (BOOL_KEYS.has(k)) parseBool(k, v);
      applyOption(o, k, v);
    }
    return o;
  });
}

function applyOption(o: DriveOptions, k: string, v: string): void {
  switch (k) {
    case 'id':
      if (!idWellformed(v)) {
        blockFail(EINVAL, "Parameter 'id' expects an identifier\nIdentifiers consist of letters, digits, '-', '.', '_', starting with a letter.");
      }
      o.id = v;
      return;
    case 'file': o.file = v; return;
    case 'format': o.format = v; return;
    case 'node-name': o.nodeName = v; return;
    case 'if':
      if (!IF_NAMES.includes(v)) blockFail(EINVAL, `unsupported bus type '${v}'`);
      o.ifType = v;
      return;
    case 'read-only': o.readOnly = parseBool(k, v); return;
    case 'cache': o.cache = parseCacheMode(v); return;
    case 'cache.writeback': o.cache = { ...o.cache, writeback: parseBool(k, v) }; return;
    case 'cache.direct': o.cache = { ...o.cache, direct: parseBool(k, v) }; return;
    case 'cache.no-flush': o.cache = { ...o.cache, noFlush: parseBool(k, v) }; return;
    case 'discard':
      if (v === 'ignore' || v === 'off') o.discard = 'ignore';
      else if (v === 'unmap' || v === 'on') o.discard = 'unmap';
      else blockFail(EINVAL, 'Invalid discard option');
      return;
    case 'detect-zeroes':
      if (v !== 'off' && v !== 'on' && v !== 'unmap') blockFail(EINVAL, `Parameter 'detect-zeroes' does not accept value '${v}'`);
      o.detectZeroes = v;
      return;
    case 'index': o.index = parseUint(k, v); return;
    case 'bus': o.bus = parseUint(k, v); return;
    case 'unit': o.unit = parseUint(k, v); return;
    case 'media':
      if (v !== 'disk' && v !== 'cdrom') blockFail(EINVAL, `'${v}' invalid media`);
      if (v === 'cdrom') blockFail(EINVAL, 'detvm supports only media=disk');
      return;
    case 'snapshot':
      if (parseBool(k, v)) blockFail(EINVAL, 'detvm does not support snapshot=on (temporary overlays)');
      return;
    case 'copy-on-read':
      if (parseBool(k, v)) blockFail(EINVAL, 'detvm does not support copy-on-read=on');
      return;
    case 'werror':
      if (!['ignore', 'stop', 'report', 'enospc'].includes(v)) blockFail(EINVAL, `'${v}' invalid write error action`);
      o.werror = v;
      return;
    case 'rerror':
      if (!['ignore', 'stop', 'report'].includes(v)) blockFail(EINVAL, `'${v}' invalid read error action`);
      o.rerror = v;
      return;
    case 'aio':
      if (v !== 'threads' && v !== 'native' && v !== 'io_uring') blockFail(EINVAL, `invalid aio option`);
      return;
    case 'serial': o.serial = v; return;
  }
}

/** What driveNew made: the backend and warnings QEMU would print (format probing). */
export interface DriveCreated {
  blk: BlockBackend;
  warnings: string[];
}

/**
 * Create the drive: open the image (when file= is given) and the backend with its id, generated
 * as QEMU does ("none0", "virtio0"...) when absent. `defaultIf` is the machine's
 * block_default_type. @qemu blockdev.c drive_new
 */
export function driveNew(m: LoopMachine, o: DriveOptions, defaultIf = 'none'): BlockResult<DriveCreated> {
  const st = blockState(m);
  const ifType = o.ifType ?? defaultIf;
  if (ifType !== 'none' && ifType !== 'virtio') {
    return { ok: false, errno: EINVAL, error: `machine type does not support if=${ifType},bus=${o.bus ?? 0},unit=${o.unit ?? o.index ?? 0}` };
  }
  let unit = o.unit ?? o.index ?? 0;
  if (o.unit === null && o.index === null) {
    while (st.backends.some((b) => b.ifType === ifType && b.unit === unit)) unit++;
  }
  const id = o.id ?? `${ifType}${unit}`;
  if (st.backends.some((b) => b.name === id)) return { ok: false, errno: EINVAL, error: `Duplicate ID '${id}' for drive` };
  let warnings: string[] = [];
  let root = null;
  if (o.file !== null && o.file !== '') {
    const opened = bdrvOpen(m, {
      filename: o.file, format: o.format, nodeName: o.nodeName, readOnly: o.readOnly, cache: o.cache,
      detectZeroes: o.detectZeroes, discard: o.discard,
    });
    if (!opened.ok) return opened;
    root = opened.value.bs;
    warnings = opened.value.warnings;
  }
  if (o.unknown.length > 0) {
    // QEMU hands unknown keys to the format driver, which refuses the first one.
    if (root) bdrvClose(m, root);
    return { ok: false, errno: EINVAL, error: `Block format '${root?.drv.formatName ?? 'raw'}' does not support the option '${o.unknown[0]}'` };
  }
  const blk = blkNew(m, id, root, ifType, unit);
  if (!blk.ok) {
    if (root) bdrvClose(m, root);
    return blk;
  }
  return { ok: true, value: { blk: blk.value, warnings } };
}
