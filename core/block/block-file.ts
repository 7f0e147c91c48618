// The storage under a block node (QEMU's file-posix protocol driver, reduced to what detvm needs):
// a BlockFile with synchronous pread/pwrite/flush/truncate, and a BlockFileProvider that opens
// files by name. Synchronous calls keep the order of writes reaching the image the order in which
// the driver issued them, which is what crash safety and determinism rest on. This file holds the
// contracts and the in-memory implementation (tests, replay); the host one is core/host/block-file.ts.
// Invariants: pread fills the whole buffer (bytes past the end of the file read as zero, as
// file-posix does); pwrite past the end grows the file; errors are thrown as BlockError.

import { assert } from '../util/index.ts';
import { BlockError, EACCES, EINVAL, ENOENT, strerror } from './errno.ts';

/** One open image file. Every method may throw BlockError (errno and QEMU-style text). */
export interface BlockFile {
  /** The name it was opened with (the `filename` of `info block`). */
  readonly name: string;
  readonly readOnly: boolean;
  /** Current length in bytes. */
  size(): number;
  /** Bytes the file takes on its storage (st_blocks × 512), where the host knows it. */
  allocatedSize?(): number;
  /** Fill `buf` from `offset`; bytes past the end of the file read as zero. */
  pread(offset: number, buf: Uint8Array): void;
  /** Write `data` at `offset`, growing the file if needed. */
  pwrite(offset: number, data: Uint8Array): void;
  /** Make every completed write durable (fsync). */
  flush(): void;
  /** Set the length to `size` bytes (zero-filled when growing). */
  truncate(size: number): void;
  /** Release the file. Further calls are programmer errors. */
  close(): void;
}

/** How block nodes reach files: the host file system (live) or an in-memory map (tests). */
export interface BlockFileProvider {
  readonly kind: 'memory' | 'host';
  /** Open an existing file. Throws BlockError (ENOENT, EACCES...). */
  open(path: string, readOnly: boolean): BlockFile;
  /** Create (or truncate to empty) a file and open it read-write. */
  create(path: string): BlockFile;
}

/** The bytes of one in-memory file: plain data that outlives its BlockFile handles. */
export interface MemFileData {
  bytes: Uint8Array;
  length: number;
}

const MEM_INITIAL = 64 * 1024;

function memEnsure(d: MemFileData, end: number): void {
  if (end <= d.bytes.length) return;
  let cap = Math.max(d.bytes.length, MEM_INITIAL);
  while (cap < end) cap *= 2;
  const bytes = new Uint8Array(cap);
  bytes.set(d.bytes.subarray(0, d.length));
  d.bytes = bytes;
}

function checkRange(name: string, offset: number, len: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(offset + len)) {
    throw new BlockError(EINVAL, `${name}: offset ${offset} is not a valid file offset`);
  }
}

/** A BlockFile over `d`. Writes to a read-only handle fail with EACCES, as a read-only fd would. */
export function memBlockFileOpen(name: string, d: MemFileData, readOnly = false): BlockFile {
  let open = true;
  const live = (): void => assert(open, `in-memory file '${name}' used after close`);
  return {
    name,
    readOnly,
    size: () => (live(), d.length),
    pread(offset, buf) {
      live();
      checkRange(name, offset, buf.length);
      const end = Math.min(d.length, offset + buf.length);
      if (offset < end) buf.set(d.bytes.subarray(offset, end));
      buf.fill(0, Math.max(0, end - offset));
    },
    pwrite(offset, data) {
      live();
      checkRange(name, offset, data.length);
      if (readOnly) throw new BlockError(EACCES, strerror(EACCES));
      memEnsure(d, offset + data.length);
      if (offset > d.length) d.bytes.fill(0, d.length, offset);
      d.bytes.set(data, offset);
      d.length = Math.max(d.length, offset + data.length);
    },
    flush: () => live(),
    truncate(size) {
      live();
      checkRange(name, size, 0);
      if (readOnly) throw new BlockError(EACCES, strerror(EACCES));
      memEnsure(d, size);
      if (size > d.length) d.bytes.fill(0, d.length, size);
      d.length = size;
    },
    close() {
      live();
      open = false;
    },
  };
}

/** An in-memory file system: a provider plus the map of its files (inspect or seed it in tests). */
export interface MemBlockFileProvider extends BlockFileProvider {
  readonly files: Map<string, MemFileData>;
}

/** A provider whose files live in `files` (a fresh map by default). */
export function memBlockFileProviderCreate(files = new Map<string, MemFileData>()): MemBlockFileProvider {
  return {
    kind: 'memory',
    files,
    open(path, readOnly) {
      const d = files.get(path);
      if (!d) throw new BlockError(ENOENT, strerror(ENOENT));
      return memBlockFileOpen(path, d, readOnly);
    },
    create(path) {
      const d: MemFileData = { bytes: new Uint8Array(0), length: 0 };
      files.set(path, d);
      return memBlockFileOpen(path, d, false);
    },
  };
}

/** A copy of an in-memory file's current bytes (tests compare images byte for byte). */
export function memFileBytes(d: MemFileData): Uint8Array {
  return d.bytes.slice(0, d.length);
}
