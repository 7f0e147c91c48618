// The stdio chardev (chardev/char-stdio.c): an fd chardev on the process's stdin/stdout (live)
// or an in-memory terminal (virtual). Only one may exist ("cannot use stdio by multiple
// character devices"). signal=on (the -chardev default; mon:stdio turns it off) makes ^C and
// ^\ raise SIGINT/SIGQUIT, which reach the machine through charState(m).hooks.stdioSignal.
// The terminal is restored when the chardev is finalized (and by the host at exit).

import { chardevCreate, charState } from '../core/char/index.ts';
import type { StdioProvider } from '../core/host/index.ts';
import type { LoopMachine } from '../core/loop/index.ts';
import type { OpenResult } from './char-driver.ts';
import { fdDriver, qemuChrOpenFd } from './char-fd.ts';

export const stdioDriver = fdDriver('stdio');

/** @qemu chardev/char-stdio.c qemu_chr_open_stdio */
export function qemuChrOpenStdio(
  m: LoopMachine, label: string, stdio: StdioProvider, signal: boolean | undefined,
): OpenResult {
  const s = charState(m);
  if (s.stdioInUse) return { ok: false, error: 'cannot use stdio by multiple character devices' };
  const r = stdio.open({
    signal: signal ?? true,
    onSignal: (sig) => s.hooks.stdioSignal?.(sig),
  });
  if (!r.ok) return r;
  s.stdioInUse = true;
  const chr = chardevCreate(m, label, stdioDriver, 'stdio');
  const ends = r.ends;
  qemuChrOpenFd(chr, ends.in, ends.out, {
    onFinalize: () => {
      ends.close(); // term_exit
      s.stdioInUse = false;
    },
    setEcho: ends.setEcho,
  });
  return { ok: true, chr, beOpened: true };
}
