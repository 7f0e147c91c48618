// VMState descriptions of a virtio-mmio transport with its device (virtio-blk), over the plain
// state in hw/virtio-mmio.ts, hw/virtqueue.ts and hw/virtio-blk.ts (here with the other device
// descriptions, so hw/ does not import migration/). The section is named as QEMU names it
// (idstr "virtio-mmio@<base>/virtio-blk", version 2), but the body is detvm's own layout:
// QEMU writes virtio devices with hand-written code (virtio_save) that a VMState description
// cannot express, so a QEMU stream's virtio-blk section does not load into detvm, nor the
// reverse. Requests in flight are not saved: savevm and migration drain the drive first.

import { EINVAL } from '../errors.ts';
import {
  type VMStateDescription, type VMStateStaged, vmstateArray, vmstateBool, vmstateStruct, vmstateStructArray,
  vmstateUint16, vmstateUint32, vmstateUint64, vmstateUint8,
} from '../vmstate-types.ts';
import { vmstateCommit } from '../vmstate.ts';
import { assert } from '../../util/index.ts';
import {
  type VirtQueueState, type VirtioMmioProxy, type VirtioMmioQueueRegs, type VirtioMmioState, type VirtIOBlock,
  type VirtIOBlockState, VIRTQUEUE_MAX_SIZE, virtioMmioDevPath, virtioMmioUpdateIrq,
} from '../../hw/index.ts';

/** The device ring a queue runs on, and how far the device got. */
const vmstateVirtQueue: VMStateDescription<VirtQueueState> = {
  name: 'virtqueue_state',
  versionId: 1,
  minimumVersionId: 1,
  fields: [
    vmstateUint32('vring.num', 'num'),
    vmstateBool('ready', 'ready'),
    vmstateUint64('vring.desc', 'descAddr'),
    vmstateUint64('vring.avail', 'availAddr'),
    vmstateUint64('vring.used', 'usedAddr'),
    vmstateUint16('last_avail_idx', 'lastAvailIdx'),
    vmstateUint16('used_idx', 'usedIdx'),
    vmstateUint16('inuse', 'inuse'),
  ],
};

/** @qemu hw/virtio/virtio-mmio.c vmstate_virtio_mmio_queue_state */
const vmstateVirtioMmioQueueState: VMStateDescription<VirtioMmioQueueRegs> = {
  name: 'virtio_mmio/queue_state',
  versionId: 1,
  minimumVersionId: 1,
  fields: [
    vmstateUint16('num', 'num'),
    vmstateBool('enabled', 'enabled'),
    vmstateArray('uint32', 'desc', 'desc', 2),
    vmstateArray('uint32', 'avail', 'avail', 2),
    vmstateArray('uint32', 'used', 'used', 2),
  ],
};

function vmstateTransport(queues: number): VMStateDescription<VirtioMmioState> {
  return {
    name: 'virtio_mmio',
    versionId: 1,
    minimumVersionId: 1,
    fields: [
      vmstateUint32('host_features_sel', 'hostFeaturesSel'),
      vmstateUint32('guest_features_sel', 'guestFeaturesSel'),
      vmstateArray('uint32', 'guest_features', 'guestFeatures', 2),
      vmstateArray('uint32', 'features', 'features', 2),
      vmstateUint32('queue_sel', 'queueSel'),
      vmstateUint8('status', 'status'),
      vmstateUint8('isr', 'isr'),
      vmstateUint32('generation', 'generation'),
      vmstateBool('broken', 'broken'),
      vmstateStructArray('vqs', 'regs', queues, vmstateVirtioMmioQueueState),
      vmstateStructArray('vring', 'vqs', queues, vmstateVirtQueue),
    ],
  };
}

const vmstateVirtioBlkDevice: VMStateDescription<VirtIOBlockState> = {
  name: 'virtio-blk-device',
  versionId: 1,
  minimumVersionId: 1,
  fields: [vmstateUint8('wce', 'wce')],
};

/** What the section saves: the transport and the device, as one object. */
export interface VirtioBlkSaved {
  transport: VirtioMmioState;
  device: VirtIOBlockState;
}

function stagedQueuesOk(staged: VMStateStaged): boolean {
  const t = staged.transport as { vqs?: Array<Record<string, unknown>> } | undefined;
  for (const vq of t?.vqs ?? []) {
    const num = vq.num as number;
    const inuse = vq.inuse as number;
    if (num > VIRTQUEUE_MAX_SIZE || inuse > num) return false;
  }
  return true;
}

/**
 * The description of virtio-blk device `s` on its transport (section name "virtio-blk", as
 * QEMU's vmstate_virtio_blk; version 2). Saving asserts that nothing is in flight: savevm and
 * migration drain the block layer before they save devices.
 */
export function vmstateVirtioBlk(s: VirtIOBlock): VMStateDescription<VirtioBlkSaved> {
  const queues = s.vdev.queueSizes.length;
  return {
    name: 'virtio-blk',
    versionId: 2,
    minimumVersionId: 2,
    preSave: () => {
      assert(s.inflight === 0, `virtio-blk on ${virtioBlkDevPath(s.proxy)}: ${s.inflight} requests in flight at save`);
      return 0;
    },
    postLoad: (staged, _v, _live, report) => {
      if (stagedQueuesOk(staged)) return 0;
      report('virtio-blk: queue state out of range');
      return -EINVAL;
    },
    fields: [
      vmstateStruct('transport', 'transport', vmstateTransport(queues)),
      vmstateStruct('device', 'device', vmstateVirtioBlkDevice),
    ],
  };
}

/** The savevm idstr prefix (qdev path) of the device on `proxy`. */
export function virtioBlkDevPath(proxy: VirtioMmioProxy): string {
  return virtioMmioDevPath(proxy.base);
}

/** The object to register for `s` (it aliases the live state). */
export function virtioBlkSavedState(s: VirtIOBlock): VirtioBlkSaved {
  return { transport: s.proxy.s, device: s.s };
}

/** Apply a loaded section, then drive the IRQ line from the restored ISR. */
export function virtioBlkCommit(s: VirtIOBlock, live: VirtioBlkSaved, staged: VMStateStaged): void {
  vmstateCommit(live, staged);
  virtioMmioUpdateIrq(s.proxy);
}
