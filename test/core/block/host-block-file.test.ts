// The host image-file adapter (core/host/block-file.ts): it satisfies the BlockFile contract
// (zero fill past the end, growth, truncate, flush), reports host errors with errno and strerror
// text the block layer recognises, and carries qcow2 images and -drive through to real files.
// Method: a temporary directory.
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type BlockFileProvider, EBADF, EISDIR, ENOENT, blockSetIo, blkPread, blkPwrite, driveNew, driveParse,
  isBlockError, qcow2Create,
} from '../../../core/block/index.ts';
import { hostBlockFileProviderCreate } from '../../../core/host/block-file.ts';
import { loopMachineCreate } from '../../../core/loop/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'detvm-host-block-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const io: BlockFileProvider = hostBlockFileProviderCreate();

function errnoOf(fn: () => unknown): [number, string] | null {
  try {
    fn();
    return null;
  } catch (e) {
    if (!isBlockError(e)) throw e;
    return [e.errno, e.message];
  }
}

describe('host block files', () => {
  it('read, write, grow, truncate and flush a real file', () => {
    const f = io.create(join(dir, 'a.img'));
    f.pwrite(10, new Uint8Array([1, 2, 3]));
    expect(f.size()).toBe(13);
    const b = new Uint8Array(20).fill(9);
    f.pread(5, b);
    expect(Array.from(b)).toEqual([0, 0, 0, 0, 0, 1, 2, 3, ...new Array<number>(12).fill(0)]);
    f.truncate(4096);
    f.flush();
    expect(statSync(join(dir, 'a.img')).size).toBe(4096);
    f.close();
    expect(() => f.size()).toThrow('used after close');
  });

  it('report host errors as block errors with errno and strerror text', () => {
    expect(errnoOf(() => io.open(join(dir, 'missing.img'), false))).toEqual([ENOENT, 'No such file or directory']);
    mkdirSync(join(dir, 'sub'));
    expect(errnoOf(() => io.open(join(dir, 'sub'), true))).toEqual([EISDIR, 'Is a directory']);
    io.create(join(dir, 'ro.img')).close();
    const ro = io.open(join(dir, 'ro.img'), true);
    expect(errnoOf(() => ro.pwrite(0, new Uint8Array(1)))).toEqual([EBADF, 'Bad file descriptor']);
    ro.close();
  });

  it('carry -drive and qcow2 to a file on disk', () => {
    const m = loopMachineCreate();
    blockSetIo(m, io);
    const path = join(dir, 'd.qcow2');
    const f = io.create(path);
    qcow2Create(f, { size: 1 << 20 });
    f.close();
    const missing = driveNew(m, (driveParse(`file=${join(dir, 'nope.qcow2')},format=qcow2,if=none`) as { ok: true; value: never }).value);
    expect(missing).toMatchObject({ ok: false, error: `Could not open '${join(dir, 'nope.qcow2')}': No such file or directory` });
    const o = driveParse(`file=${path},format=qcow2,if=none,id=d0`);
    if (!o.ok) throw new Error(o.error);
    const d = driveNew(m, o.value);
    if (!d.ok) throw new Error(d.error);
    expect(blkPwrite(d.value.blk, 4096, new Uint8Array(512).fill(7))).toBe(0);
    const back = new Uint8Array(512);
    expect(blkPread(d.value.blk, 4096, back)).toBe(0);
    expect(back.every((x) => x === 7)).toBe(true);
    expect(statSync(path).size).toBeGreaterThan(196_608);
  });
});
