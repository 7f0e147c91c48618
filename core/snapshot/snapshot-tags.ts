// Snapshot tags for the monitor's loadvm/delvm completion (migration/savevm.c vm_completion,
// QEMU 7.2): the name and the id of every snapshot on every disk that can take snapshots, in
// bdrv_first/bdrv_next order. The monitor filters them by the typed prefix.

import { bdrvCanSnapshot, bdrvNextAll, bdrvSnapshotList } from '../block/index.ts';
import type { SnapshotMachine } from './snapshot-state.ts';

/** Names and ids, name first for each snapshot. @qemu vm_completion */
export function snapshotCompletionTags(m: SnapshotMachine): string[] {
  const out: string[] = [];
  for (const bs of bdrvNextAll(m)) {
    if (!bdrvCanSnapshot(bs)) continue;
    const l = bdrvSnapshotList(bs);
    if (!l.ok) continue;
    for (const sn of l.value) out.push(sn.name, sn.idStr);
  }
  return out;
}
