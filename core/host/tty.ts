// What a terminal line discipline does to input bytes when ISIG is on (stdio signal=on): the
// INTR (^C) and QUIT (^\) characters raise a signal and never reach the reader. Node's raw mode
// turns ISIG off, so detvm applies this filter on the host side, before bytes enter the kernel.
// Pure: shared by the real stdio adapter and the in-memory one.

import type { StdioSignal } from './types.ts';

export const VINTR_CHAR = 0x03;
export const VQUIT_CHAR = 0x1c;

/**
 * Remove INTR/QUIT characters from `data`, calling `onSignal` for each in input order.
 * Returns `data` itself when it holds none.
 */
export function ttyIsigFilter(data: Uint8Array, onSignal: (sig: StdioSignal) => void): Uint8Array {
  if (data.indexOf(VINTR_CHAR) < 0 && data.indexOf(VQUIT_CHAR) < 0) return data;
  const out: number[] = [];
  for (const b of data) {
    if (b === VINTR_CHAR) onSignal('SIGINT');
    else if (b === VQUIT_CHAR) onSignal('SIGQUIT');
    else out.push(b);
  }
  return Uint8Array.from(out);
}
