// Commands for `exec:` migration URIs (migration/exec.c, QEMU 7.2): `/bin/sh -c CMD` with the
// command's stdin (outgoing migration) or stdout (incoming) as a stream VirtualFd; its other
// streams are the emulator's. Off unless the host enables it (detvm -migrate-exec on): a command
// line is host I/O outside the machine, so virtual mode never has it. Output is buffered by Node
// up to EXEC_WRITE_HIGH bytes, then the descriptor turns unwritable until 'drain'; input enters
// through the boundary (`deliver`), with the pipe paused while EXEC_READ_HIGH bytes wait.
// Invariant: the command's stream ends (EOF or error) arrive as one `hup` input.

import { spawn } from 'node:child_process';
import { type HostInput, type LoopMachine, type VirtualFd, vfdOpen } from '../loop/index.ts';
import { hostStreamWrite } from './stream-write.ts';

const EXEC_WRITE_HIGH = 4 << 20;
const EXEC_READ_HIGH = 4 << 20;

/** What `m.migration.exec` needs (structurally core/migration's MigrationExecProvider). */
export interface HostExecProvider {
  open(m: LoopMachine, cmd: string, dir: 'out' | 'in'): { ok: true; fd: VirtualFd } | { ok: false; error: string };
}

/** The `exec:` provider of live machine `m`; inputs go through `deliver` (which wakes the driver). */
export function hostExecCreate(deliver: (i: HostInput) => void): HostExecProvider {
  return {
    open(m, cmd, dir) {
      let child;
      try {
        child = spawn('/bin/sh', ['-c', cmd], {
          stdio: dir === 'out' ? ['pipe', 'inherit', 'inherit'] : ['ignore', 'pipe', 'inherit'],
        });
      } catch (e) {
        return { ok: false, error: `failed to execute '${cmd}': ${String(e)}` };
      }
      let hupSent = false;
      const hup = (fd: VirtualFd): void => {
        if (hupSent) return;
        hupSent = true;
        deliver({ kind: 'hup', fd: fd.id });
      };
      if (dir === 'out') {
        const pipe = child.stdin!;
        const fd = vfdOpen(m.fdt, `exec-out:${cmd}`, 'stream', (d) => {
          if (pipe.destroyed || !pipe.writable) return -1;
          return hostStreamWrite(pipe, fd, d, EXEC_WRITE_HIGH);
        });
        pipe.on('drain', () => deliver({ kind: 'writable', fd: fd.id, writable: true }));
        pipe.on('error', () => hup(fd));
        pipe.on('close', () => hup(fd));
        fd.onClose = () => pipe.end();
        return { ok: true, fd };
      }
      const pipe = child.stdout!;
      const fd = vfdOpen(m.fdt, `exec-in:${cmd}`, 'stream', () => -1);
      let paused = false;
      let arriving = 0;
      let lastInbound = 0;
      pipe.on('data', (chunk: Buffer) => {
        arriving += chunk.length;
        deliver({ kind: 'data', fd: fd.id, data: new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length) });
        if (!paused && arriving + fd.inboundBytes >= EXEC_READ_HIGH) {
          paused = true;
          pipe.pause();
        }
      });
      fd.onInboundChange = (f) => {
        const delta = f.inboundBytes - lastInbound;
        lastInbound = f.inboundBytes;
        if (delta > 0) arriving = Math.max(0, arriving - delta);
        if (paused && arriving + f.inboundBytes < EXEC_READ_HIGH / 2) {
          paused = false;
          pipe.resume();
        }
      };
      pipe.on('end', () => hup(fd));
      pipe.on('error', () => hup(fd));
      fd.onClose = () => {
        pipe.destroy();
      };
      return { ok: true, fd };
    },
  };
}
