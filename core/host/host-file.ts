// Files for the file chardev and logfile= (chardev/char-file.c, chardev/char-fd.c), on the real
// file system with synchronous node:fs calls. Output is written through at once; input is read
// in chunks of FILE_CHUNK bytes, the next chunk only once the kernel has consumed the previous
// one, so a large in= file never sits in memory whole. Input enters through `deliver` (the
// boundary), then a hang-up at EOF, exactly as a pipe would.

import * as fs from 'node:fs';
import { type HostInput, type LoopMachine, type VirtualFd, vfdOpen } from '../loop/index.ts';
import { errnoCode, strerror } from './errno.ts';
import type { FileProvider } from './types.ts';

/** Bytes read from an input file per delivery (each delivery costs a main-loop iteration). */
export const FILE_CHUNK = 1 << 20;

/** @qemu util/osdep.c error_setg_file_open */
function fileOpenError(path: string, err: unknown): string {
  return `Could not open '${path}': ${strerror(errnoCode(err))}`;
}

function openOut(
  m: LoopMachine, path: string, append: boolean,
): { ok: true; fd: VirtualFd } | { ok: false; error: string } {
  let hfd: number;
  try {
    hfd = fs.openSync(path, append ? 'a' : 'w', 0o666);
  } catch (err) {
    return { ok: false, error: fileOpenError(path, err) };
  }
  const fd = vfdOpen(m.fdt, `file-out:${path}`, 'stream', (d) => {
    try {
      return fs.writeSync(hfd, d);
    } catch {
      return -1;
    }
  });
  fd.onClose = () => fs.closeSync(hfd);
  return { ok: true, fd };
}

function openIn(
  m: LoopMachine, path: string, deliver: (i: HostInput) => void,
): { ok: true; fd: VirtualFd } | { ok: false; error: string } {
  let hfd: number;
  try {
    hfd = fs.openSync(path, 'r');
  } catch (err) {
    return { ok: false, error: fileOpenError(path, err) };
  }
  const fd = vfdOpen(m.fdt, `file-in:${path}`, 'stream', () => -1);
  let pendingBytes = 0;
  let lastInbound = 0;
  let eof = false;
  const feed = (): void => {
    if (eof || fd.closed || pendingBytes > 0 || fd.inboundBytes >= FILE_CHUNK) return;
    const buf = new Uint8Array(FILE_CHUNK);
    let n = 0;
    try {
      n = fs.readSync(hfd, buf, 0, FILE_CHUNK, null);
    } catch {
      n = 0; // a read error ends the input like EOF (fd_chr_read sees 0 or -1 alike)
    }
    if (n === 0) {
      eof = true;
      deliver({ kind: 'hup', fd: fd.id });
      return;
    }
    pendingBytes += n;
    deliver({ kind: 'data', fd: fd.id, data: buf.subarray(0, n) });
  };
  fd.onInboundChange = (f) => {
    const delta = f.inboundBytes - lastInbound;
    lastInbound = f.inboundBytes;
    if (delta > 0) pendingBytes = Math.max(0, pendingBytes - delta);
    feed();
  };
  fd.onClose = () => fs.closeSync(hfd);
  feed();
  return { ok: true, fd };
}

/** A FileProvider on node:fs whose input enters through `deliver`. */
export function hostFileProviderCreate(
  m: LoopMachine, deliver: (i: HostInput) => void,
): FileProvider {
  return {
    openOut: (path, append) => openOut(m, path, append),
    openIn: (path) => openIn(m, path, deliver),
  };
}
