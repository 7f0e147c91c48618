// Assertions for programmer errors (STYLE.md §6). They are never compiled out and the kernel
// never catches AssertionError: a failed assertion means detvm itself is wrong, not the input.

/** Thrown when an internal invariant of detvm does not hold. */
export class AssertionError extends Error {
  override name = 'AssertionError';
}

/** Throw an AssertionError with `msg` unless `cond` holds. */
export function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new AssertionError(msg);
}

/** End of an exhaustive switch: reaching it means a union grew a member nobody handles. */
export function assertNever(x: never, what = 'value'): never {
  throw new AssertionError(`unexpected ${what}: ${JSON.stringify(x)}`);
}

/**
 * Assert that `ns` is a usable time or deadline in integer nanoseconds: a safe integer and,
 * unless `allowNegative`, not negative. The message names the value and what it was for.
 */
export function assertNs(ns: number, what: string, allowNegative = false): void {
  if (!Number.isSafeInteger(ns)) {
    throw new AssertionError(`${what}: ${String(ns)} ns is not a safe integer number of nanoseconds`);
  }
  if (!allowNegative && ns < 0) {
    throw new AssertionError(`${what}: ${ns} ns is negative`);
  }
}
