// The null chardev (chardev/char-null.c): discards everything written, never produces input and
// never opens (null_chr_open sets be_opened = false, so frontends get no OPENED).

import { type ChardevDriver, chardevCreate } from '../core/char/index.ts';
import type { LoopMachine } from '../core/loop/index.ts';
import type { OpenResult } from './char-driver.ts';

/** @qemu chardev/char.c null_chr_write (the default chr_write) */
export const nullDriver: ChardevDriver = {
  type: 'null',
  write: (_chr, buf) => buf.length,
};

/** @qemu chardev/char-null.c null_chr_open */
export function qemuChrOpenNull(m: LoopMachine, label: string): OpenResult {
  return { ok: true, chr: chardevCreate(m, label, nullDriver, 'null'), beOpened: false };
}
