// Linux errno numbers and glibc strerror texts for the block layer. QEMU's block functions return
// -errno and its messages end in strerror ("Could not open 'x': No such file or directory",
// "Error -22 while loading VM state"), so detvm keeps the same numbers and texts.
// Pure data; also the typed error that block internals throw and API boundaries turn into values.

export const EPERM = 1;
export const ENOENT = 2;
export const EIO = 5;
export const EBADF = 9;
export const ENOMEM = 12;
export const EACCES = 13;
export const EBUSY = 16;
export const EEXIST = 17;
export const EISDIR = 21;
export const EINVAL = 22;
export const EFBIG = 27;
export const ENOSPC = 28;
export const EROFS = 30;
export const ERANGE = 34;
export const ENOSYS = 38;
export const ENOTSUP = 95;
export const ENOMEDIUM = 123;

const TEXTS: Readonly<Record<number, string>> = {
  [EPERM]: 'Operation not permitted',
  [ENOENT]: 'No such file or directory',
  [EIO]: 'Input/output error',
  [EBADF]: 'Bad file descriptor',
  [ENOMEM]: 'Cannot allocate memory',
  [EACCES]: 'Permission denied',
  [EBUSY]: 'Device or resource busy',
  [EEXIST]: 'File exists',
  [EISDIR]: 'Is a directory',
  [EINVAL]: 'Invalid argument',
  [EFBIG]: 'File too large',
  [ENOSPC]: 'No space left on device',
  [EROFS]: 'Read-only file system',
  [ERANGE]: 'Numerical result out of range',
  [ENOSYS]: 'Function not implemented',
  [ENOTSUP]: 'Operation not supported',
  [ENOMEDIUM]: 'No medium found',
};

const BY_CODE: Readonly<Record<string, number>> = {
  EPERM, ENOENT, EIO, EBADF, ENOMEM, EACCES, EBUSY, EEXIST, EISDIR, EINVAL, EFBIG, ENOSPC, EROFS,
  ERANGE, ENOSYS, ENOTSUP, EOPNOTSUPP: ENOTSUP, ENOMEDIUM,
};

/** strerror(3) for a positive errno; unknown numbers read "Unknown error N" as in glibc. */
export function strerror(errno: number): string {
  return TEXTS[errno] ?? `Unknown error ${errno}`;
}

/** The errno number of a Node error code ('ENOENT' → 2); unknown codes map to EIO. */
export function errnoFromCode(code: string | undefined): number {
  if (code === undefined) return EIO;
  return BY_CODE[code] ?? EIO;
}

/**
 * An operating error inside the block layer: a failed host read, a corrupt image, a full disk.
 * `errno` is positive; `message` is QEMU's text for it (without the strerror suffix unless the
 * QEMU message has one). API boundaries catch it and return it as a value.
 */
export class BlockError extends Error {
  override name = 'BlockError';
  constructor(readonly errno: number, message: string) {
    super(message);
  }
}

/** Throw a BlockError. */
export function blockFail(errno: number, message: string): never {
  throw new BlockError(errno, message);
}

/** An operation's outcome at the block layer's API boundary. */
export type BlockResult<T> = { ok: true; value: T } | { ok: false; errno: number; error: string };

/**
 * Whether `e` is a block operating error: a BlockError, or the same shape thrown by a host file
 * adapter (core/host cannot import this class, so it throws an Error named 'BlockError').
 */
export function isBlockError(e: unknown): e is BlockError {
  if (e instanceof BlockError) return true;
  return e instanceof Error && e.name === 'BlockError' && typeof (e as { errno?: unknown }).errno === 'number';
}

/** Run `fn`, turning a block operating error into a failed result. Other exceptions propagate. */
export function blockTry<T>(fn: () => T): BlockResult<T> {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (isBlockError(e)) return { ok: false, errno: e.errno, error: e.message };
    throw e;
  }
}
