// The file chardev (chardev/char-file.c): output to path= (truncated, or appended with
// append=on), optional input from a file (QMP "in"; on the command line detvm accepts in= and
// QEMU 9.1's input-path=). Input is read through the fd base's flow-controlled watch; at EOF
// the frontend gets CLOSED.

import { chardevCreate } from '../core/char/index.ts';
import type { FileProvider } from '../core/host/index.ts';
import { type LoopMachine, vfdClose } from '../core/loop/index.ts';
import type { OpenResult } from './char-driver.ts';
import { fdDriver, qemuChrOpenFd } from './char-fd.ts';

export const fileDriver = fdDriver('file');

/** @qemu chardev/char-file.c qmp_chardev_open_file */
export function qmpChardevOpenFile(
  m: LoopMachine, label: string, files: FileProvider, out: string, input: string | null,
  append: boolean,
): OpenResult {
  const o = files.openOut(out, append);
  if (!o.ok) return o;
  let inFd = null;
  if (input !== null) {
    const i = files.openIn(input);
    if (!i.ok) {
      vfdClose(m.fdt, o.fd);
      return i;
    }
    inFd = i.fd;
  }
  const chr = chardevCreate(m, label, fileDriver, 'file');
  qemuChrOpenFd(chr, inFd, o.fd);
  return { ok: true, chr, beOpened: true };
}
