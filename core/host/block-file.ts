// Host image files for block nodes (QEMU's block/file-posix.c, synchronous): a BlockFileProvider
// over node:fs with pread/pwrite/fsync/ftruncate on a file descriptor. Synchronous calls keep the
// order in which writes reach the file the order the qcow2 driver issued them (crash safety) and
// keep the kernel deterministic. The objects satisfy core/block's BlockFile and BlockFileProvider
// contracts structurally (this layer may not import core/block). Errors are thrown as core/block's
// BlockError shape: an Error with a positive `errno` and the strerror text as its message.

import * as fs from 'node:fs';

/** Linux errno numbers for the codes Node reports on file operations. */
const ERRNO: Readonly<Record<string, number>> = {
  EPERM: 1, ENOENT: 2, EIO: 5, EBADF: 9, ENOMEM: 12, EACCES: 13, EBUSY: 16, EEXIST: 17,
  ENOTDIR: 20, EISDIR: 21, EINVAL: 22, EMFILE: 24, EFBIG: 27, ENOSPC: 28, EROFS: 30,
  ENAMETOOLONG: 36, ENOTSUP: 95, EOPNOTSUPP: 95,
};

const TEXTS: Readonly<Record<number, string>> = {
  1: 'Operation not permitted', 2: 'No such file or directory', 5: 'Input/output error',
  9: 'Bad file descriptor', 12: 'Cannot allocate memory', 13: 'Permission denied',
  16: 'Device or resource busy', 17: 'File exists', 20: 'Not a directory', 21: 'Is a directory',
  22: 'Invalid argument', 24: 'Too many open files', 27: 'File too large',
  28: 'No space left on device', 30: 'Read-only file system', 36: 'File name too long',
  95: 'Operation not supported',
};

/** The error thrown by host files: named BlockError so core/block treats it as its own. */
class HostBlockError extends Error {
  override name = 'BlockError';
  constructor(readonly errno: number, message: string) {
    super(message);
  }
}

function fail(err: unknown): never {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  const errno = ERRNO[code] ?? 5;
  throw new HostBlockError(errno, TEXTS[errno] ?? `Unknown error ${errno}`);
}

/** The BlockFile shape (see core/block/block-file.ts). */
export interface HostBlockFile {
  readonly name: string;
  readonly readOnly: boolean;
  size(): number;
  allocatedSize(): number;
  pread(offset: number, buf: Uint8Array): void;
  pwrite(offset: number, data: Uint8Array): void;
  flush(): void;
  truncate(size: number): void;
  close(): void;
}

function wrapFd(name: string, fd: number, readOnly: boolean): HostBlockFile {
  let open = true;
  const live = (): void => {
    if (!open) throw new Error(`host image file '${name}' used after close`);
  };
  return {
    name,
    readOnly,
    size() {
      live();
      try {
        return fs.fstatSync(fd).size;
      } catch (e) {
        return fail(e);
      }
    },
    allocatedSize() {
      live();
      try {
        return fs.fstatSync(fd).blocks * 512;
      } catch (e) {
        return fail(e);
      }
    },
    pread(offset, buf) {
      live();
      let done = 0;
      try {
        while (done < buf.length) {
          const n = fs.readSync(fd, buf, done, buf.length - done, offset + done);
          if (n === 0) break; // end of file: the rest reads as zero
          done += n;
        }
      } catch (e) {
        fail(e);
      }
      buf.fill(0, done);
    },
    pwrite(offset, data) {
      live();
      let done = 0;
      try {
        while (done < data.length) {
          done += fs.writeSync(fd, data, done, data.length - done, offset + done);
        }
      } catch (e) {
        fail(e);
      }
    },
    flush() {
      live();
      try {
        fs.fsyncSync(fd);
      } catch (e) {
        fail(e);
      }
    },
    truncate(size) {
      live();
      try {
        fs.ftruncateSync(fd, size);
      } catch (e) {
        fail(e);
      }
    },
    close() {
      live();
      open = false;
      try {
        fs.closeSync(fd);
      } catch (e) {
        fail(e);
      }
    },
  };
}

function openFd(path: string, flags: string): number {
  let fd: number;
  try {
    fd = fs.openSync(path, flags);
  } catch (e) {
    return fail(e);
  }
  try {
    if (fs.fstatSync(fd).isDirectory()) {
      fs.closeSync(fd);
      throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
    }
  } catch (e) {
    return fail(e);
  }
  return fd;
}

/** Image files on the host file system. */
export function hostBlockFileProviderCreate(): {
  readonly kind: 'host';
  open(path: string, readOnly: boolean): HostBlockFile;
  create(path: string): HostBlockFile;
} {
  return {
    kind: 'host',
    open: (path, readOnly) => wrapFd(path, openFd(path, readOnly ? 'r' : 'r+'), readOnly),
    create: (path) => wrapFd(path, openFd(path, 'w+'), false),
  };
}
