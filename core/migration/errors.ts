// Operating errors of the migration layer as values: QEMU's negative errno returns, the strerror
// texts that callers print ("load of migration failed: %s"), and the shape of a failed save or
// load (the error_report lines in the order QEMU prints them, then the return code).
// Invariant: `ret` is a negative errno (or -1, which QEMU uses as a bare failure).

/** errno values QEMU's savevm/loadvm paths return (Linux numbering). */
export const EPERM = 1;
export const ENOENT = 2;
export const EIO = 5;
export const EAGAIN = 11;
export const EINVAL = 22;
export const ENOSPC = 28;
export const ERANGE = 34;
export const ENOTSUP = 95;

const STRERROR: Readonly<Record<number, string>> = {
  [EPERM]: 'Operation not permitted',
  [ENOENT]: 'No such file or directory',
  [EIO]: 'Input/output error',
  [EAGAIN]: 'Resource temporarily unavailable',
  [EINVAL]: 'Invalid argument',
  [ENOSPC]: 'No space left on device',
  [ERANGE]: 'Numerical result out of range',
  [ENOTSUP]: 'Operation not supported',
};

/**
 * glibc's strerror text for a positive errno, as QEMU prints it after "load of migration
 * failed: " or in error_setg_errno messages. Unknown numbers read "Unknown error N".
 */
export function strerror(errno: number): string {
  return STRERROR[errno] ?? `Unknown error ${errno}`;
}

/**
 * A failed savevm or loadvm: `messages` are the error_report lines QEMU would print, oldest
 * first (e.g. "Failed to load timer:cpu_clock_offset", then "error while loading state for
 * instance 0x0 of device 'timer'"); `ret` is the negative errno the QEMU function returns.
 */
export interface MigrationFailure {
  ret: number;
  messages: string[];
}

/** Format `n` as C's `%x` of an unsigned 32-bit value. */
export function hex32(n: number): string {
  return (n >>> 0).toString(16);
}
