// Block nodes (QEMU's BlockDriverState, block.c): opening a format node over a protocol node,
// format probing, node names, the per-machine block state and the node lists in QEMU's orders
// (all_bdrv_states by creation, graph_bdrv_states by naming). Invariants: a node is in
// `nodes` from creation until closed; `inFlight` counts its requests between submission and
// completion; node names are unique and never shared with a backend name.

import { assert, prngInt } from '../util/index.ts';
import type { LoopMachine } from '../loop/index.ts';
import type { BlockFileProvider } from './block-file.ts';
import { type BlockResult, EINVAL, ENOENT, ENOMEDIUM, blockFail, blockTry, isBlockError, strerror } from './errno.ts';
import { type BdsOpaque, type BlockDriver, bdrvFile, bdrvFindFormat, bdrvQcow2, bdrvRaw } from './block-driver.ts';
import { QCOW_MAGIC, getU32 } from './qcow2-format.ts';
import { qcow2Open } from './qcow2.ts';
import type { BlockBackend } from './block-backend.ts';

/** @qemu qapi BlockdevCacheInfo */
export interface BlockdevCacheInfo {
  writeback: boolean;
  direct: boolean;
  noFlush: boolean;
}

/** @qemu qapi BlockdevDetectZeroesOptions (shown by info block; detvm does not act on it) */
export type DetectZeroes = 'off' | 'on' | 'unmap';

/** I/O accounting for `info blockstats`. @qemu BlockAcctStats (the counters) */
export interface BlockAcctStats {
  rdBytes: number;
  wrBytes: number;
  rdOperations: number;
  wrOperations: number;
  flushOperations: number;
  unmapOperations: number;
}

/** @qemu include/block/block_int-common.h BlockDriverState */
export interface BlockDriverState {
  nodeName: string;
  drv: BlockDriver;
  opaque: BdsOpaque;
  filename: string;
  readOnly: boolean;
  /** The protocol child of a format node. */
  file: BlockDriverState | null;
  /** The format node above a protocol node. */
  parent: BlockDriverState | null;
  /** The backend whose root this is, if any. */
  blk: BlockBackend | null;
  cache: BlockdevCacheInfo;
  detectZeroes: DetectZeroes;
  /** discard=unmap (BDRV_O_UNMAP): guest discards and unmapping zero writes reach the driver. */
  unmap: boolean;
  /** Requests on this node between submission and completion. */
  inFlight: number;
  stats: BlockAcctStats;
  closed: boolean;
}

/** Modelled request latency: fixed + per MiB (integers, ns). */
export interface BlockLatency {
  fixedNs: number;
  nsPerMiB: number;
  flushNs: number;
}

/** The block layer's part of a machine. */
export interface BlockState {
  io: BlockFileProvider | null;
  /** @qemu all_bdrv_states: creation order */
  nodes: BlockDriverState[];
  /** @qemu graph_bdrv_states: the order node names were assigned */
  namedNodes: BlockDriverState[];
  /** @qemu block_backends / monitor_block_backends: creation order */
  backends: BlockBackend[];
  /** @qemu id_generate's ID_BLOCK counter */
  nodeIdCounter: number;
  inFlight: number;
  /** bdrv_drain_all_begin nesting: while > 0 new requests wait. */
  quiesceCounter: number;
  latency: BlockLatency;
  nextRequestId: number;
}

/** A machine with a block layer (the state is created on first use by blockState). */
export interface BlockMachine extends LoopMachine {
  block: BlockState;
}

/** 20 µs per request plus 1 ms per MiB (about 1 GiB/s); a flush costs 100 µs. */
export const DEFAULT_BLOCK_LATENCY: BlockLatency = { fixedNs: 20_000, nsPerMiB: 1_000_000, flushNs: 100_000 };

/** A machine's empty block state: no drives, no file provider, the default latency. */
export function blockStateCreate(): BlockState {
  return {
    io: null, nodes: [], namedNodes: [], backends: [], nodeIdCounter: 0, inFlight: 0, quiesceCounter: 0,
    latency: { ...DEFAULT_BLOCK_LATENCY }, nextRequestId: 1,
  };
}

/** The block state of `m`, created on first use. */
export function blockState(m: LoopMachine): BlockState {
  const bm = m as Partial<BlockMachine> & LoopMachine;
  if (!bm.block) bm.block = blockStateCreate();
  return bm.block;
}

/** Set how this machine reaches image files (the composition root does this once). */
export function blockSetIo(m: LoopMachine, io: BlockFileProvider): void {
  blockState(m).io = io;
}

/** @qemu util/id.c id_wellformed */
export function idWellformed(id: string): boolean {
  return /^[A-Za-z][A-Za-z0-9_.-]*$/.test(id);
}

/** @qemu block.c bdrv_find_node */
export function bdrvFindNode(m: LoopMachine, nodeName: string): BlockDriverState | null {
  return blockState(m).namedNodes.find((bs) => bs.nodeName === nodeName) ?? null;
}

/**
 * Give `bs` its node name: the requested one after QEMU's checks, or a generated "#blockNNN"
 * (a counter followed by two digits QEMU draws at random; detvm draws them from the machine's
 * seeded PRNG). @qemu block.c bdrv_assign_node_name, util/id.c id_generate
 */
function bdrvAssignNodeName(m: LoopMachine, bs: BlockDriverState, nodeName: string | null): void {
  const st = blockState(m);
  let name: string;
  if (nodeName !== null) {
    if (!idWellformed(nodeName)) blockFail(EINVAL, `Invalid node-name: '${nodeName}'`);
    if (st.backends.some((b) => b.name === nodeName)) blockFail(EINVAL, `node-name=${nodeName} is conflicting with a device id`);
    if (bdrvFindNode(m, nodeName)) blockFail(EINVAL, `Duplicate nodes with node-name='${nodeName}'`);
    if (nodeName.length >= 32) blockFail(EINVAL, 'Node name too long');
    name = nodeName;
  } else {
    name = `#block${st.nodeIdCounter++}${String(prngInt(m.rng, 100)).padStart(2, '0')}`;
  }
  bs.nodeName = name;
  st.namedNodes.push(bs);
}

function bdrvNew(m: LoopMachine, drv: BlockDriver, opaque: BdsOpaque, filename: string, readOnly: boolean, cache: BlockdevCacheInfo): BlockDriverState {
  const bs: BlockDriverState = {
    nodeName: '', drv, opaque, filename, readOnly, file: null, parent: null, blk: null, cache,
    detectZeroes: 'off', unmap: false, inFlight: 0,
    stats: { rdBytes: 0, wrBytes: 0, rdOperations: 0, wrOperations: 0, flushOperations: 0, unmapOperations: 0 },
    closed: false,
  };
  blockState(m).nodes.push(bs);
  return bs;
}

/** How to open an image (what -drive passes down). */
export interface BdrvOpenOptions {
  filename: string;
  /** 'qcow2', 'raw' or 'file'; null probes the image. */
  format: string | null;
  nodeName: string | null;
  readOnly: boolean;
  cache: BlockdevCacheInfo;
  detectZeroes: DetectZeroes;
  /** discard=unmap; 'ignore' (the default) drops guest discards. */
  discard?: 'ignore' | 'unmap';
}

/** What bdrvOpen returns: the format node and any warnings QEMU would print. */
export interface BdrvOpened {
  bs: BlockDriverState;
  warnings: string[];
}

const PROBE_RAW_WARNING = (f: string): string =>
  `WARNING: Image format was not specified for '${f}' and probing guessed raw.\n`
  + '         Automatically detecting the format is dangerous for raw images, write operations on block 0 will be restricted.\n'
  + "         Specify the 'raw' format explicitly to remove the restrictions.";

/** qcow2 if the first bytes say so, else raw. @qemu block.c find_image_format, qcow2_probe */
function probeFormat(bs: BlockDriverState): BlockDriver {
  const head = new Uint8Array(8);
  bs.drv.pread(bs, 0, head);
  return getU32(head, 0) === QCOW_MAGIC && getU32(head, 4) >= 2 ? bdrvQcow2 : bdrvRaw;
}

/**
 * Open an image: the protocol node over the file, then (unless format is 'file') the format
 * node on top, probing when no format is given. Errors carry QEMU's texts ("Unknown driver
 * 'x'", "Could not open 'f': No such file or directory", the qcow2 open errors); on error
 * nothing stays open. @qemu block.c bdrv_open (as blk_new_open from -drive uses it)
 */
export function bdrvOpen(m: LoopMachine, o: BdrvOpenOptions): BlockResult<BdrvOpened> {
  const st = blockState(m);
  const created: BlockDriverState[] = [];
  const r = blockTry((): BdrvOpened => {
    const drv = o.format === null ? null : bdrvFindFormat(o.format);
    if (o.format !== null && drv === null) blockFail(ENOENT, `Unknown driver '${o.format}'`);
    if (!st.io) blockFail(ENOMEDIUM, 'the block layer has no file provider (blockSetIo was not called)');
    const top = drv === bdrvFile ? null : bdrvNew(m, bdrvRaw, { kind: 'raw' }, o.filename, o.readOnly, o.cache);
    if (top) created.push(top);
    let file;
    try {
      file = st.io.open(o.filename, o.readOnly);
    } catch (e) {
      if (!isBlockError(e)) throw e;
      return blockFail(e.errno, `Could not open '${o.filename}': ${strerror(e.errno)}`);
    }
    const proto = bdrvNew(m, bdrvFile, { kind: 'file', file }, o.filename, o.readOnly, o.cache);
    created.push(proto);
    bdrvAssignNodeName(m, proto, top ? null : o.nodeName);
    const warnings: string[] = [];
    if (!top) return { bs: proto, warnings };
    top.file = proto;
    proto.parent = top;
    const fmt = drv ?? probeFormat(proto);
    if (drv === null && fmt === bdrvRaw) warnings.push(PROBE_RAW_WARNING(o.filename));
    top.drv = fmt;
    if (fmt === bdrvQcow2) top.opaque = { kind: 'qcow2', s: qcow2Open(file, { readOnly: o.readOnly, noFlush: o.cache.noFlush }) };
    top.detectZeroes = o.detectZeroes;
    top.unmap = o.discard === 'unmap';
    proto.unmap = top.unmap;
    bdrvAssignNodeName(m, top, o.nodeName);
    return { bs: top, warnings };
  });
  if (!r.ok) for (const bs of created.reverse()) bdrvForget(m, bs, true);
  return r;
}

/** Remove a node from the lists; with `closeFile`, close a protocol node's file. */
function bdrvForget(m: LoopMachine, bs: BlockDriverState, closeFile: boolean): void {
  const st = blockState(m);
  st.nodes = st.nodes.filter((x) => x !== bs);
  st.namedNodes = st.namedNodes.filter((x) => x !== bs);
  if (closeFile && bs.opaque.kind === 'file' && !bs.closed) {
    try {
      bs.opaque.file.close();
    } catch (e) {
      if (!isBlockError(e)) throw e;
    }
  }
  bs.closed = true;
}

/**
 * Close a format node and its file child (flushing first). Requests must have drained.
 * Returns 0 or the first -errno. @qemu block.c bdrv_close
 */
export function bdrvClose(m: LoopMachine, bs: BlockDriverState): number {
  assert(bs.inFlight === 0, `bdrv_close: node '${bs.nodeName}' still has ${bs.inFlight} requests in flight`);
  const r = blockTry(() => {
    if (!bs.readOnly) bs.drv.flush(bs);
    bs.drv.close(bs);
  });
  bdrvForget(m, bs, false);
  if (bs.file) bdrvClose(m, bs.file);
  return r.ok ? 0 : -r.errno;
}

/** The node's length in bytes. @qemu bdrv_getlength */
export function bdrvGetLength(bs: BlockDriverState): number {
  return bs.drv.getLength(bs);
}

/** The backend name if attached, else the node name. @qemu bdrv_get_device_or_node_name */
export function bdrvGetDeviceOrNodeName(bs: BlockDriverState): string {
  return bs.blk ? bs.blk.name : bs.nodeName;
}

/**
 * Nodes in bdrv_first/bdrv_next order: every backend's root, then nodes nobody uses (the ones
 * -blockdev would own). @qemu block/block-backend.c bdrv_next
 */
export function bdrvNextAll(m: LoopMachine): BlockDriverState[] {
  const st = blockState(m);
  const out: BlockDriverState[] = [];
  for (const blk of st.backends) if (blk.root && !out.includes(blk.root)) out.push(blk.root);
  for (const bs of st.nodes) if (!bs.blk && !bs.parent && !out.includes(bs)) out.push(bs);
  return out;
}
