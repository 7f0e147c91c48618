// qcow2 open errors: each malformed header field yields QEMU 7.2's message and errno, in
// QEMU's checking order. The same crafted images are fed to real qemu-img in qemu-img.test.ts
// (when installed) to confirm the texts. Also: the corrupt bit, unknown autoclear bits, and
// dirty images being repaired when opened read-write.
import { describe, expect, it } from 'vitest';
import {
  BlockError, EACCES, ENOTSUP, memBlockFileOpen, memFileBytes, qcow2Check, qcow2Open, qcow2Pwrite, qcow2Close,
  qcow2GetRefcount,
} from '../../../core/block/index.ts';
import { putU64 } from '../../../core/block/qcow2-format.ts';
import { memData, memQcow2, openRw } from './support.ts';
import { OPEN_ERROR_CASES, craftedImage } from './crafted.ts';

function openError(bytes: Uint8Array, readOnly = true): [string, number] | null {
  try {
    qcow2Open(memBlockFileOpen('x', memData(bytes), readOnly), { readOnly });
    return null;
  } catch (e) {
    if (!(e instanceof BlockError)) throw e;
    return [e.message, e.errno];
  }
}

describe('qcow2 open errors', () => {
  for (const c of OPEN_ERROR_CASES) {
    it(`${c.what}: "${c.message}"`, () => {
      expect(openError(craftedImage(c.patch))).toEqual([c.message, c.errno]);
    });
  }

  it('a corrupt image opens read-only but not read-write', () => {
    const b = craftedImage((x) => putU64(x, 72, 2));
    expect(openError(b, true)).toBeNull();
    expect(openError(b, false)).toEqual(['qcow2: Image is corrupt; cannot be opened read/write', EACCES]);
  });

  it('names known features from the image\'s feature table', () => {
    const b = craftedImage((x) => putU64(x, 72, 0x14));
    expect(openError(b)).toEqual(['Unsupported qcow2 feature(s): external data file, extended L2 entries', ENOTSUP]);
  });

  it('clears unknown autoclear bits when opened read-write', () => {
    const b = craftedImage((x) => putU64(x, 88, 0x8000));
    const d = memData(b);
    qcow2Close(qcow2Open(memBlockFileOpen('x', d), { readOnly: false }));
    expect(Array.from(d.bytes.subarray(88, 96))).toEqual([0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('repairs a dirty image (leaked and missing refcounts, COPIED flags) when opened read-write', () => {
    const { p, name } = memQcow2(1 << 20, { clusterSize: 4096 });
    const s = openRw(p, name);
    qcow2Pwrite(s, 0, new Uint8Array(64 << 10).fill(1));
    // Forge an inconsistent state: one data cluster's refcount too high, another's zero.
    const block = s.refcountTable[0]!;
    const c1 = 6;
    const c2 = 7;
    expect([qcow2GetRefcount(s, c1), qcow2GetRefcount(s, c2)]).toEqual([1, 1]);
    s.file.pwrite(block + 2 * c1, new Uint8Array([0, 2]));
    s.file.pwrite(block + 2 * c2, new Uint8Array([0, 0]));
    s.file.pwrite(72, new Uint8Array([0, 0, 0, 0, 0, 0, 0, 1])); // dirty bit
    qcow2Close(s);
    const bytes = memFileBytes(p.files.get(name)!);
    const before = qcow2Check(qcow2Open(memBlockFileOpen('ro', memData(bytes), true), { readOnly: true }));
    expect([before.corruptions, before.leaks]).toEqual([3, 1]); // c2 refcount, two COPIED flags
    const d = memData(bytes);
    const fixed = qcow2Open(memBlockFileOpen('rw', d), { readOnly: false });
    expect(fixed.incompatibleFeatures).toBe(0n);
    const after = qcow2Check(fixed);
    expect([after.corruptions, after.leaks, after.messages]).toEqual([0, 0, []]);
  });
});
