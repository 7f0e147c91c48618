// virtio-mmio (version 2) and virtio-blk on the virt board, driven register by register from the
// test: the transports' identity and QEMU's placement (first -device at 0x10008000, IRQ 8),
// feature negotiation and queue setup, IN/OUT/FLUSH/GET_ID requests completing in virtual time
// after the block layer's latency (in flight meanwhile), the used ring, ISR and the PLIC line,
// errors (range, unsupported type, malformed chains breaking the device), reset, and the
// device's savevm section round-tripping. Method: test/core/hw/virtio-support.ts's TS driver.
import { describe, expect, it } from 'vitest';
import { runFor } from '../../../core/loop/index.ts';
import { bdrvInFlightAll, blkByName, blkPread, blockState, qmpQueryBlock } from '../../../core/block/index.ts';
import {
  globalStateStore, qemuFileGetBuffer, qemuFileWriterCreate, qemuLoadvmState, qemuSavevmState, vmstateSaveState,
} from '../../../core/migration/index.ts';
import { virtioBlkSavedState, vmstateVirtioBlk } from '../../../core/migration/machine/virtio-mmio.ts';
import { VIRT_VIRTIO_BASE, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP } from '../../../core/hw/index.ts';
import {
  Q, QN, REG, blkRequest, dataOf, driverInit, le16, offer, put, rd, statusOf, usedElem, virtioRig, wr,
} from './virtio-support.ts';

const pattern = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);

describe('virtio-mmio transports', () => {
  it('eight transports, empty ones read as virt v2 QEMU with device id 0; the first -device takes the last', () => {
    const r = virtioRig(1);
    for (let i = 0; i < 8; i++) {
      const base = VIRT_VIRTIO_BASE + i * 0x1000;
      const at = (off: number): number => rdAt(r, base + off);
      expect([at(REG.MAGIC), at(REG.VERSION), at(REG.VENDOR)]).toEqual([0x74726976, 2, 0x554d4551]);
      expect(at(REG.DEVICE_ID)).toBe(i === 7 ? 2 : 0);
    }
    expect(r.m.virtio.blks[0]!.proxy.index).toBe(7);
    // QEMU names an anonymous -device by how many came before it, not by its transport.
    expect(qmpQueryBlock(r.m)[0]!.qdev).toBe('/machine/peripheral-anon/device[0]');
  });

  it('offers VERSION_1 and virtio-blk features; QueueNumMax 1024; config holds capacity and blk_size', () => {
    const r = virtioRig(1, 3 << 20);
    wr(r, REG.DEVICE_FEATURES_SEL, 0);
    expect(rd(r, REG.DEVICE_FEATURES)).toBe((1 << 2) | (1 << 6) | (1 << 9) | (1 << 10) | (1 << 27) | (1 << 28));
    wr(r, REG.DEVICE_FEATURES_SEL, 1);
    expect(rd(r, REG.DEVICE_FEATURES)).toBe(1);
    wr(r, REG.QUEUE_SEL, 0);
    expect(rd(r, REG.QUEUE_NUM_MAX)).toBe(1024);
    wr(r, REG.QUEUE_SEL, 1);
    expect(rd(r, REG.QUEUE_NUM_MAX)).toBe(0);
    expect(rd(r, REG.CONFIG)).toBe((3 << 20) / 512);
    expect(rd(r, REG.CONFIG + 4)).toBe(0);
    expect(rd(r, REG.CONFIG + 12)).toBe(254);
    expect(rd(r, REG.CONFIG + 20)).toBe(512);
    expect(rd(r, REG.CONFIG + 34, 2)).toBe(1);
    expect(rd(r, REG.CONFIG + 36)).toBe(0xffffffff); // past the config space
    expect(rd(r, REG.STATUS, 2)).toBe(0); // wrong size for a register
  });
});

function rdAt(r: ReturnType<typeof virtioRig>, addr: number): number {
  const saved = r.base;
  r.base = addr;
  const v = rd(r, 0);
  r.base = saved;
  return v;
}

describe('virtio-blk requests', () => {
  it('a write then a read complete after the modelled latency, in order, with the used ring and IRQ', () => {
    const r = virtioRig(1);
    driverInit(r);
    const data = pattern(4096, 3);
    offer(r, 0, blkRequest(r, 0, 1, 8, data));
    offer(r, 3, blkRequest(r, 1, 0, 8, 4096));
    wr(r, REG.QUEUE_NOTIFY, 0);
    expect(bdrvInFlightAll(r.m)).toBe(2);
    expect(r.m.virtio.blks[0]!.inflight).toBe(2);
    expect(le16(r, Q.used + 2)).toBe(0);
    expect(rd(r, REG.ISR)).toBe(0);
    runFor(r.m, 10_000_000);
    expect(bdrvInFlightAll(r.m)).toBe(0);
    expect(le16(r, Q.used + 2)).toBe(2);
    expect(usedElem(r, 0)).toEqual([0, 1]);
    expect(usedElem(r, 1)).toEqual([3, 4097]);
    expect([statusOf(r, 0), statusOf(r, 1)]).toEqual([VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK]);
    expect(dataOf(r, 1, 4096)).toEqual(data);
    const onDisk = new Uint8Array(4096);
    expect(blkPread(blkByName(r.m, 'd0')!, 8 * 512, onDisk)).toBe(0);
    expect(onDisk).toEqual(data);
    expect(rd(r, REG.ISR)).toBe(1);
    expect(r.m.plic.s.level[0]! & (1 << 8)).not.toBe(0);
    wr(r, REG.ACK, 1);
    expect(rd(r, REG.ISR)).toBe(0);
    expect(r.m.plic.s.level[0]! & (1 << 8)).toBe(0);
  });

  it('flush, GET_ID (serial + NUL, at most 20 bytes), unsupported types and out-of-range sectors', () => {
    const r = virtioRig(1, 1 << 20, ',serial=detvm-serial-0123456789');
    driverInit(r);
    offer(r, 0, blkRequest(r, 0, 4, 0, 0));
    offer(r, 2, blkRequest(r, 1, 8, 0, 20));
    offer(r, 5, blkRequest(r, 2, 42, 0, 0));
    offer(r, 7, blkRequest(r, 3, 0, 2048, 512)); // one sector past the end
    offer(r, 10, blkRequest(r, 4, 0, 0, 100)); // not a whole sector
    wr(r, REG.QUEUE_NOTIFY, 0);
    runFor(r.m, 10_000_000);
    expect([0, 1, 2, 3, 4].map((s) => statusOf(r, s))).toEqual([
      VIRTIO_BLK_S_OK, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_IOERR,
    ]);
    expect(Buffer.from(dataOf(r, 1, 20)).toString('latin1')).toBe('detvm-serial-0123456');
    // Synchronous completions come first; the flush completes after its latency.
    expect([0, 1, 2, 3, 4].map((i) => usedElem(r, i)[0])).toEqual([2, 5, 7, 10, 0]);
  });

  it('a malformed chain breaks the device (NEEDS_RESET, config interrupt) until the driver resets it', () => {
    const reports: string[] = [];
    const r = virtioRig(1);
    r.m.sys.report = (msg) => void reports.push(msg);
    driverInit(r);
    offer(r, 0, [{ addr: Q.bufs, len: 16, write: true }]); // no device-readable header
    wr(r, REG.QUEUE_NOTIFY, 0);
    expect(reports).toEqual(['virtio-blk missing headers']);
    expect(rd(r, REG.STATUS) & 0x40).toBe(0x40);
    expect(rd(r, REG.ISR)).toBe(3);
    expect(rd(r, REG.GENERATION)).toBe(1);
    wr(r, REG.STATUS, 0);
    expect([rd(r, REG.STATUS), rd(r, REG.ISR), r.m.virtio.blks[0]!.proxy.s.broken]).toEqual([0, 0, false]);
    driverInit(r);
    offer(r, 0, blkRequest(r, 0, 4, 0, 0));
    wr(r, REG.QUEUE_NOTIFY, 0);
    runFor(r.m, 10_000_000);
    expect(statusOf(r, 0)).toBe(VIRTIO_BLK_S_OK);
  });

  it('rings outside RAM and a moved avail index are guest errors, never exceptions', () => {
    const reports: string[] = [];
    const r = virtioRig(1);
    r.m.sys.report = (msg) => void reports.push(msg);
    driverInit(r);
    offer(r, 0, [{ addr: 0x1000, len: 16, write: false }, { addr: Q.bufs, len: 1, write: true }]);
    wr(r, REG.QUEUE_NOTIFY, 0);
    expect(reports).toEqual(['virtio: bogus descriptor or out of resources']);
    wr(r, REG.STATUS, 0);
    driverInit(r);
    const n = new Uint8Array(2);
    new DataView(n.buffer).setUint16(0, QN + 5, true);
    put(r, Q.avail + 2, n);
    wr(r, REG.QUEUE_NOTIFY, 0);
    expect(reports[1]).toBe(`Guest moved used index from 0 to ${QN + 5}`);
  });

  it('a device reset drops the completions of requests still in flight', () => {
    const r = virtioRig(1);
    driverInit(r);
    offer(r, 0, blkRequest(r, 0, 0, 0, 512));
    wr(r, REG.QUEUE_NOTIFY, 0);
    wr(r, REG.STATUS, 0);
    runFor(r.m, 10_000_000);
    expect(bdrvInFlightAll(r.m)).toBe(0);
    expect(r.m.virtio.blks[0]!.inflight).toBe(0);
    expect(le16(r, Q.used + 2)).toBe(0);
    expect(rd(r, REG.ISR)).toBe(0);
  });
});

describe('virtio-blk savevm section', () => {
  it('is named as QEMU names it and round-trips: save, load into a fresh machine, save again', () => {
    const r = virtioRig(1);
    driverInit(r);
    offer(r, 0, blkRequest(r, 0, 4, 0, 0));
    wr(r, REG.QUEUE_NOTIFY, 0);
    runFor(r.m, 10_000_000);
    const s = r.m.virtio.blks[0]!;
    const se = r.m.migration.sv.handlers.find((h) => h.idstr.endsWith('/virtio-blk'))!;
    expect([se.idstr, se.instanceId, se.versionId]).toEqual(['virtio-mmio@0000000010008000/virtio-blk', 0, 2]);
    const save = (x: typeof s): Uint8Array => {
      const f = qemuFileWriterCreate();
      vmstateSaveState(f, vmstateVirtioBlk(x), virtioBlkSavedState(x), null);
      return qemuFileGetBuffer(f).slice();
    };
    const bytes = save(s);
    const f2 = qemuFileWriterCreate();
    globalStateStore(r.m.migration.gs, 'prelaunch');
    expect(qemuSavevmState(r.m.migration.sv, f2)).toBeNull();
    const r2 = virtioRig(1);
    expect(qemuLoadvmState(r2.m.migration.sv, qemuFileGetBuffer(f2).slice()).ok).toBe(true);
    const s2 = r2.m.virtio.blks[0]!;
    expect(save(s2)).toEqual(bytes);
    expect(s2.proxy.s.vqs[0]!.usedIdx).toBe(1);
    expect(blockState(r2.m).backends.length).toBe(1);
  });
});
