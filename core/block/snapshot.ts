// Snapshot operations across nodes (block/snapshot.c as in QEMU 7.2) and the vmstate area
// (bdrv_save_vmstate / bdrv_load_vmstate). These are what savevm, loadvm, delvm and
// `info snapshots` call. Errors come back as values with QEMU's texts; the monitor adds "Error: ".
// The nodes considered are bdrv_next's (backend roots, then unattached nodes), skipping
// read-only ones, exactly as bdrv_all_snapshots_includes_bs does. Callers drain first, as
// save_snapshot and load_snapshot do (bdrv_drain_all_begin); delete drains here like QEMU.

import type { LoopMachine } from '../loop/index.ts';
import { type BlockResult, EINVAL, ENOENT, ENOMEDIUM, ENOTSUP, blockFail, blockTry, strerror } from './errno.ts';
import { type BlockDriverState, bdrvFindNode, bdrvGetDeviceOrNodeName, bdrvNextAll } from './block.ts';
import { requireDriverOp } from './block-driver.ts';
import type { QEMUSnapshotInfo } from './qcow2-snapshot.ts';
import { bdrvDrainAllBegin, bdrvDrainAllEnd } from './io.ts';

export type { QEMUSnapshotInfo };

function fail<T>(errno: number, error: string): BlockResult<T> {
  return { ok: false, errno, error };
}

/** The node that implements snapshots for `bs`: itself, or its file child as a fallback. @qemu bdrv_snapshot_fallback */
function snapshotNode(bs: BlockDriverState): BlockDriverState | null {
  if (bs.drv.snapshots) return bs;
  return bs.file ? snapshotNode(bs.file) : null;
}

/** Whether `bs` can take snapshots (inserted, writable, a driver that supports them). @qemu bdrv_can_snapshot */
export function bdrvCanSnapshot(bs: BlockDriverState): boolean {
  if (bs.closed || bs.readOnly) return false;
  return snapshotNode(bs) !== null;
}

/** @qemu block/snapshot.c bdrv_all_snapshots_includes_bs */
function includesBs(bs: BlockDriverState): boolean {
  if (bs.closed || bs.readOnly) return false;
  return bs.blk !== null || bs.parent === null;
}

/** @qemu bdrv_all_get_snapshot_devices: explicit node names, or every node in bdrv_next order. */
function snapshotDevices(m: LoopMachine, devices: string[] | null): BlockResult<BlockDriverState[]> {
  if (devices === null) return { ok: true, value: bdrvNextAll(m) };
  if (devices.length === 0) return fail(EINVAL, 'At least one device is required for snapshot');
  const out: BlockDriverState[] = [];
  for (const d of devices) {
    const bs = bdrvFindNode(m, d);
    if (!bs) return fail(ENOENT, `No block device node '${d}'`);
    out.push(bs);
  }
  return { ok: true, value: out };
}

/** The snapshot list of a node, or -ENOTSUP / -ENOMEDIUM. @qemu bdrv_snapshot_list */
export function bdrvSnapshotList(bs: BlockDriverState): BlockResult<QEMUSnapshotInfo[]> {
  if (bs.closed) return fail(ENOMEDIUM, strerror(ENOMEDIUM));
  const n = snapshotNode(bs);
  if (!n) return fail(ENOTSUP, strerror(ENOTSUP));
  return blockTry(() => n.drv.snapshots!.list(n));
}

/** The first snapshot named `name` (7.2 matches the name only), or null. @qemu bdrv_snapshot_find */
export function bdrvSnapshotFind(bs: BlockDriverState, name: string): QEMUSnapshotInfo | null {
  const l = bdrvSnapshotList(bs);
  if (!l.ok) return null;
  return l.value.find((sn) => sn.name === name) ?? null;
}

/** Create a snapshot on one node; returns its new id. @qemu bdrv_snapshot_create */
export function bdrvSnapshotCreate(bs: BlockDriverState, sn: QEMUSnapshotInfo): BlockResult<string> {
  return blockTry(() => {
    const n = snapshotNode(bs);
    if (!n) blockFail(ENOTSUP, strerror(ENOTSUP));
    return n.drv.snapshots!.create(n, sn);
  });
}

/** Revert one node to a snapshot (id or name). @qemu bdrv_snapshot_goto */
export function bdrvSnapshotGoto(bs: BlockDriverState, idOrName: string): BlockResult<void> {
  const n = snapshotNode(bs);
  if (!n) return fail(ENOTSUP, 'Block driver does not support snapshots');
  const r = blockTry(() => n.drv.snapshots!.goto(n, idOrName));
  return r.ok ? r : fail(r.errno, `Failed to load snapshot: ${strerror(r.errno)}`);
}

/** Delete a snapshot by id and/or name, draining first. @qemu bdrv_snapshot_delete */
export function bdrvSnapshotDelete(m: LoopMachine, bs: BlockDriverState, id: string | null, name: string | null): BlockResult<void> {
  if (id === null && name === null) return fail(EINVAL, 'snapshot_id and name are both NULL');
  const n = snapshotNode(bs);
  if (!n) {
    return fail(ENOTSUP, `Block format '${bs.drv.formatName}' used by device '${bs.blk?.name ?? ''}' does not support internal snapshot deletion`);
  }
  bdrvDrainAllBegin(m);
  try {
    return blockTry(() => n.drv.snapshots!.delete(n, id, name));
  } finally {
    bdrvDrainAllEnd(m);
  }
}

/** @qemu bdrv_all_can_snapshot */
export function bdrvAllCanSnapshot(m: LoopMachine, devices: string[] | null = null): BlockResult<void> {
  const list = snapshotDevices(m, devices);
  if (!list.ok) return list;
  for (const bs of list.value) {
    if ((devices !== null || includesBs(bs)) && !bdrvCanSnapshot(bs)) {
      return fail(ENOTSUP, `Device '${bdrvGetDeviceOrNodeName(bs)}' is writable but does not support snapshots`);
    }
  }
  return { ok: true, value: undefined };
}

/** Delete snapshot `name` wherever it exists (missing: ignored). @qemu bdrv_all_delete_snapshot */
export function bdrvAllDeleteSnapshot(m: LoopMachine, name: string, devices: string[] | null = null): BlockResult<void> {
  const list = snapshotDevices(m, devices);
  if (!list.ok) return list;
  for (const bs of list.value) {
    if (!(devices !== null || includesBs(bs))) continue;
    const sn = bdrvSnapshotFind(bs, name);
    if (!sn) continue;
    const r = bdrvSnapshotDelete(m, bs, sn.idStr, sn.name);
    if (!r.ok) return fail(r.errno, `Could not delete snapshot '${name}' on '${bdrvGetDeviceOrNodeName(bs)}': ${r.error}`);
  }
  return { ok: true, value: undefined };
}

/** Revert every included node to snapshot `name`. @qemu bdrv_all_goto_snapshot */
export function bdrvAllGotoSnapshot(m: LoopMachine, name: string, devices: string[] | null = null): BlockResult<void> {
  const list = snapshotDevices(m, devices);
  if (!list.ok) return list;
  for (const bs of list.value) {
    if (!(devices !== null || includesBs(bs))) continue;
    const r = bdrvSnapshotGoto(bs, name);
    if (!r.ok) return fail(r.errno, `Could not load snapshot '${name}' on '${bdrvGetDeviceOrNodeName(bs)}': ${r.error}`);
  }
  return { ok: true, value: undefined };
}

/** True iff every included node has a snapshot named `name`. @qemu bdrv_all_has_snapshot */
export function bdrvAllHasSnapshot(m: LoopMachine, name: string, devices: string[] | null = null): BlockResult<boolean> {
  const list = snapshotDevices(m, devices);
  if (!list.ok) return list;
  for (const bs of list.value) {
    if (!(devices !== null || includesBs(bs))) continue;
    if (!bdrvSnapshotFind(bs, name)) return { ok: true, value: false };
  }
  return { ok: true, value: true };
}

/**
 * Create snapshot `sn` on every included node; `vmStateBs` records `vmStateSize`, the others 0.
 * Returns the id each node gave it, in order. @qemu bdrv_all_create_snapshot
 */
export function bdrvAllCreateSnapshot(m: LoopMachine, sn: QEMUSnapshotInfo, vmStateBs: BlockDriverState | null, vmStateSize: number, devices: string[] | null = null): BlockResult<string[]> {
  const list = snapshotDevices(m, devices);
  if (!list.ok) return list;
  const ids: string[] = [];
  for (const bs of list.value) {
    let r: BlockResult<string> | null = null;
    if (bs === vmStateBs) r = bdrvSnapshotCreate(bs, { ...sn, vmStateSize });
    else if (devices !== null || includesBs(bs)) r = bdrvSnapshotCreate(bs, { ...sn, vmStateSize: 0 });
    if (r === null) continue;
    if (!r.ok) return fail(r.errno, `Could not create snapshot '${sn.name}' on '${bdrvGetDeviceOrNodeName(bs)}'`);
    ids.push(r.value);
  }
  return { ok: true, value: ids };
}

/**
 * The node that stores the VM state: `vmstateNode` if given, else the first included node that
 * can take snapshots. @qemu bdrv_all_find_vmstate_bs
 */
export function bdrvAllFindVmstateBs(m: LoopMachine, vmstateNode: string | null = null, devices: string[] | null = null): BlockResult<BlockDriverState> {
  const list = snapshotDevices(m, devices);
  if (!list.ok) return list;
  for (const bs of list.value) {
    const found = (devices !== null || includesBs(bs)) && bdrvCanSnapshot(bs);
    if (vmstateNode !== null) {
      if (bs.nodeName === vmstateNode) {
        return found ? { ok: true, value: bs } : fail(ENOTSUP, `vmstate block device '${vmstateNode}' does not support snapshots`);
      }
    } else if (found) {
      return { ok: true, value: bs };
    }
  }
  if (vmstateNode !== null) return fail(ENOENT, `vmstate block device '${vmstateNode}' does not exist`);
  return fail(ENOTSUP, 'no block device can store vmstate for snapshot');
}

function vmstateNodeOf(bs: BlockDriverState): BlockDriverState {
  let n: BlockDriverState | null = bs;
  while (n && !n.drv.saveVmstate) n = n.file;
  return n ?? blockFail(ENOTSUP, strerror(ENOTSUP));
}

/**
 * Write `data` at byte `pos` of the node's vmstate area (synchronously; the caller has drained).
 * @qemu block/io.c bdrv_save_vmstate / bdrv_writev_vmstate
 */
export function bdrvSaveVmstate(bs: BlockDriverState, pos: number, data: Uint8Array): BlockResult<void> {
  return blockTry(() => {
    const n = vmstateNodeOf(bs);
    requireDriverOp(n.drv.saveVmstate, n, 'vmstate')(n, pos, data);
  });
}

/** Read `bytes` at byte `pos` of the vmstate area. @qemu block/io.c bdrv_load_vmstate */
export function bdrvLoadVmstate(bs: BlockDriverState, pos: number, bytes: number): BlockResult<Uint8Array> {
  return blockTry(() => {
    const n = vmstateNodeOf(bs);
    const buf = new Uint8Array(bytes);
    requireDriverOp(n.drv.loadVmstate, n, 'vmstate')(n, pos, buf);
    return buf;
  });
}

/**
 * Read `bytes` at `pos` of the VM state stored with snapshot `idOrName` (id first, then name)
 * without reverting anything: the active disk and vmstate area stay as they are. Lets loadvm
 * parse and check the whole stream before it changes the machine. detvm's own addition.
 */
export function bdrvSnapshotLoadVmstate(
  bs: BlockDriverState, idOrName: string, pos: number, bytes: number, into?: Uint8Array,
): BlockResult<Uint8Array> {
  return blockTry(() => {
    const n = snapshotNode(bs);
    if (!n) blockFail(ENOTSUP, strerror(ENOTSUP));
    if (into !== undefined && into.length !== bytes) blockFail(EINVAL, strerror(EINVAL));
    const buf = into ?? new Uint8Array(bytes);
    n.drv.snapshots!.loadVmstate(n, idOrName, pos, buf);
    return buf;
  });
}
