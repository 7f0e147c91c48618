// Atomic metadata transactions for qcow2 (detvm's own mechanism; QEMU updates in place).
// A transaction collects refcount deltas, new metadata written only into clusters that are free
// in the committed image, and new values for the header's pointer fields. Committing copies every
// refcount block whose counts change (and the refcount table) to free clusters too, then switches
// the image with one 36-byte header write (bytes 36..71: L1, refcount table and snapshot table
// pointers, all in sector 0). Order: new clusters → flush → header → flush. A process killed
// before the header write leaves the old image untouched and the new clusters unreferenced with
// refcount 0 in the old tables (no leak); killed after it, the new image is complete and the old
// structures are already free in its refcounts. Snapshot create/goto/delete, L1 growth, refcount
// table growth and refcount block creation all go through here.

import { assert } from '../util/index.ts';
import { EFBIG, EIO, ERANGE, blockFail } from './errno.ts';
import {
  HDR_COMMIT_OFFSET, QCOW_MAX_REFTABLE_SIZE, type Qcow2CommitFields, qcow2CommitFieldsEncode, putU64,
} from './qcow2-format.ts';
import {
  type Qcow2State, cacheDropRange, fileWrite, qcow2Barrier, qcow2GetRefcount, rbLoad, rbSet, sizeToClusters,
} from './qcow2-state.ts';

/** A metadata transaction being built. */
export interface Qcow2Tx {
  /** Refcount change per host cluster index. */
  deltas: Map<number, number>;
  /** Contents of new structures, all inside clusters this transaction allocated. */
  writes: { offset: number; data: Uint8Array }[];
  /** The pointer fields the header will hold after the commit. */
  fields: Qcow2CommitFields;
  /** Refcount block indices that must exist after the commit even without deltas. */
  forceBlocks: Set<number>;
  /** Extra "in use" test for allocation (repair: referenced clusters whose refcount is wrong). */
  busy: ((cluster: number) => boolean) | null;
  /** Where the next allocation scan starts. */
  cursor: number;
  /** Updates the caller's in-memory state (s.l1, s.snapshots) right after the header switch. */
  onCommitted: (() => void) | null;
}

/** Start a transaction whose header fields default to the image's current ones. */
export function qcow2TxBegin(s: Qcow2State): Qcow2Tx {
  return {
    deltas: new Map(),
    writes: [],
    fields: {
      l1Size: s.l1Size, l1TableOffset: s.l1TableOffset, refcountTableOffset: s.refcountTableOffset,
      refcountTableClusters: s.refcountTableClusters, nbSnapshots: s.snapshots.length,
      snapshotsOffset: s.snapshotsOffset,
    },
    forceBlocks: new Set(),
    busy: null,
    cursor: s.freeClusterIndex,
    onCommitted: null,
  };
}

/** Add `delta` to the refcount of cluster `c` in the transaction. */
export function txRef(tx: Qcow2Tx, c: number, delta: number): void {
  const v = (tx.deltas.get(c) ?? 0) + delta;
  if (v === 0) tx.deltas.delete(c);
  else tx.deltas.set(c, v);
}

/** Add `delta` to every cluster overlapping the byte range [offset, offset + bytes). */
export function txRefRange(s: Qcow2State, tx: Qcow2Tx, offset: number, bytes: number, delta: number): void {
  if (bytes <= 0) return;
  const first = Math.floor(offset / s.clusterSize);
  const last = Math.floor((offset + bytes - 1) / s.clusterSize);
  for (let c = first; c <= last; c++) txRef(tx, c, delta);
}

/** The refcount cluster `c` will have once the transaction commits. */
export function txNewRefcount(s: Qcow2State, tx: Qcow2Tx, c: number): number {
  return qcow2GetRefcount(s, c) + (tx.deltas.get(c) ?? 0);
}

function txClusterFree(s: Qcow2State, tx: Qcow2Tx, c: number): boolean {
  if (tx.deltas.has(c)) return false; // reserved or released by this transaction: live until commit
  if (tx.busy?.(c)) return false;
  return qcow2GetRefcount(s, c) === 0;
}

/**
 * Reserve `bytes` worth of contiguous clusters that are free in the committed image and not
 * touched by this transaction; returns the byte offset. Their refcount becomes 1 at commit.
 */
export function txAlloc(s: Qcow2State, tx: Qcow2Tx, bytes: number): number {
  const n = Math.max(1, sizeToClusters(s, bytes));
  const base = tx.cursor;
  let start = base;
  // Past the refcount table's reach every cluster reads as free, so a run is found within that
  // reach plus n; the bound is that plus the clusters this transaction holds.
  const limit = base + s.refcountTable.length * 2 ** s.refcountBlockBits + tx.deltas.size + 2 * n + 16;
  for (let c = start; c - start < n; c++) {
    assert(c < limit, `qcow2 transaction: no run of ${n} free clusters below cluster ${limit}`);
    if (!txClusterFree(s, tx, c)) start = c + 1;
  }
  for (let c = start; c < start + n; c++) txRef(tx, c, 1);
  tx.cursor = start + n;
  return start * s.clusterSize;
}

/** Queue the contents of a new structure (inside clusters the transaction allocated). */
export function txWrite(tx: Qcow2Tx, offset: number, data: Uint8Array): void {
  tx.writes.push({ offset, data });
}

/** Table capacity in entries for at least `need` entries, growing by half as QEMU does. */
function tableEntriesFor(s: Qcow2State, need: number): number {
  const cur = s.refcountTable.length;
  if (need <= cur) return cur;
  const perCluster = s.clusterSize / 8;
  const entries = Math.max(need, Math.ceil((cur * 3) / 2));
  return Math.ceil(entries / perCluster) * perCluster;
}

interface RefcountPlan {
  newBlocks: Map<number, number>;
  tableOffset: number;
  tableEntries: number;
}

/**
 * Allocate copies of every refcount block whose counts change and a new refcount table, until
 * the set is closed: the new clusters' own refcounts live in blocks that are in the set too.
 */
function planRefcounts(s: Qcow2State, tx: Qcow2Tx): RefcountPlan {
  const perBlock = 2 ** s.refcountBlockBits;
  const newBlocks = new Map<number, number>();
  let tableOffset = 0;
  let tableEntries = 0;
  for (let round = 0; ; round++) {
    assert(round < 64, 'qcow2 transaction: refcount block allocation does not converge');
    const affected = new Set(tx.forceBlocks);
    for (const c of tx.deltas.keys()) affected.add(Math.floor(c / perBlock));
    let changed = false;
    for (const b of [...affected].sort((x, y) => x - y)) {
      if (newBlocks.has(b)) continue;
      newBlocks.set(b, txAlloc(s, tx, s.clusterSize));
      const old = s.refcountTable[b] ?? 0;
      if (old !== 0) txRef(tx, old / s.clusterSize, -1);
      changed = true;
    }
    const need = tableEntriesFor(s, Math.max(...newBlocks.keys()) + 1);
    if (tableOffset === 0 || need > tableEntries) {
      if (tableOffset === 0) {
        txRefRange(s, tx, s.refcountTableOffset, s.refcountTableClusters * s.clusterSize, -1);
      } else {
        txRefRange(s, tx, tableOffset, tableEntries * 8, -1); // give back the smaller attempt
      }
      if (need * 8 > QCOW_MAX_REFTABLE_SIZE) blockFail(EFBIG, 'Reference count table too large');
      tableEntries = need;
      tableOffset = txAlloc(s, tx, tableEntries * 8);
      changed = true;
    }
    if (!changed) return { newBlocks, tableOffset, tableEntries };
  }
}

/** Build the new refcount blocks' contents from the old blocks and the deltas. */
function buildBlocks(s: Qcow2State, tx: Qcow2Tx, plan: RefcountPlan): Map<number, Uint8Array> {
  const perBlock = 2 ** s.refcountBlockBits;
  const out = new Map<number, Uint8Array>();
  for (const b of plan.newBlocks.keys()) {
    const old = s.refcountTable[b] ?? 0;
    out.set(b, old !== 0 ? rbLoad(s, old).slice() : new Uint8Array(s.clusterSize));
  }
  for (const [c, d] of tx.deltas) {
    const v = qcow2GetRefcount(s, c) + d;
    if (v < 0) blockFail(EIO, `qcow2: refcount of cluster ${c} would drop below zero; the image is corrupt`);
    if (v > s.refcountMax) blockFail(ERANGE, `qcow2: refcount of cluster ${c} would exceed ${s.refcountMax}`);
    const b = Math.floor(c / perBlock);
    rbSet(s, out.get(b)!, c - b * perBlock, v);
  }
  return out;
}

/**
 * Commit `tx`: write the new structures and refcount metadata, flush, switch the header, update
 * the in-memory state (refcount table, L1 and snapshot pointers, then `tx.onCommitted` for the
 * caller's `s.l1` / `s.snapshots`), flush. Throws BlockError on I/O errors; an error before the
 * header write leaves the image on disk and in memory unchanged.
 */
export function qcow2TxCommit(s: Qcow2State, tx: Qcow2Tx): void {
  const plan = planRefcounts(s, tx);
  const blocks = buildBlocks(s, tx, plan);
  const table = new Uint8Array(sizeToClusters(s, plan.tableEntries * 8) * s.clusterSize);
  const newTable: number[] = new Array<number>(plan.tableEntries).fill(0);
  for (let i = 0; i < plan.tableEntries; i++) {
    const off = plan.newBlocks.get(i) ?? s.refcountTable[i] ?? 0;
    newTable[i] = off;
    if (off !== 0) putU64(table, 8 * i, off);
  }
  const freed: number[] = [];
  for (const [c, d] of tx.deltas) {
    if (d < 0 && qcow2GetRefcount(s, c) + d === 0) freed.push(c);
  }
  for (const w of tx.writes) fileWrite(s, w.offset, w.data);
  for (const [b, data] of blocks) fileWrite(s, plan.newBlocks.get(b)!, data);
  fileWrite(s, plan.tableOffset, table);
  qcow2Barrier(s);
  const fields: Qcow2CommitFields = {
    ...tx.fields, refcountTableOffset: plan.tableOffset, refcountTableClusters: table.length / s.clusterSize,
  };
  fileWrite(s, HDR_COMMIT_OFFSET, qcow2CommitFieldsEncode(fields));
  // The image on disk is now the new one: bring memory along before anything else can fail.
  s.refcountTable = newTable;
  s.refcountTableOffset = fields.refcountTableOffset;
  s.refcountTableClusters = fields.refcountTableClusters;
  s.l1Size = fields.l1Size;
  s.l1TableOffset = fields.l1TableOffset;
  s.snapshotsOffset = fields.snapshotsOffset;
  tx.onCommitted?.();
  for (const w of tx.writes) cacheDropRange(s, w.offset, w.data.length);
  for (const b of blocks.keys()) cacheDropRange(s, plan.newBlocks.get(b)!, s.clusterSize);
  for (const c of freed) {
    cacheDropRange(s, c * s.clusterSize, s.clusterSize);
    if (c < s.freeClusterIndex) s.freeClusterIndex = c;
  }
  qcow2Barrier(s);
}
