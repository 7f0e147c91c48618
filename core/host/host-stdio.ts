// The process's stdin/stdout as a stdio chardev (chardev/char-stdio.c), for live mode. On a TTY
// the terminal goes to raw mode (no echo, no line editing; output post-processing stays on, so
// "\n" still reaches the screen as "\r\n", as QEMU's termios setup keeps OPOST). The previous
// mode is restored by close(), at process exit (also after an uncaught error), and before a
// SIGTERM/SIGHUP takes the default action. Input is paused above a bound, like sockets.

import { type HostInput, type LoopMachine, type VirtualFd, vfdOpen } from '../loop/index.ts';
import { ttyIsigFilter } from './tty.ts';
import type { StdioEndpoints, StdioOpenOptions, StdioProvider } from './types.ts';
import { hostStreamWrite } from './stream-write.ts';

export interface HostStdioOptions {
  pauseHighBytes?: number;
  resumeLowBytes?: number;
  writeHighBytes?: number;
}

const RERAISE_SIGNALS = ['SIGTERM', 'SIGHUP'] as const;

/** Raw mode on a TTY stdin, restored at exit and before SIGTERM/SIGHUP kill the process. */
function ttyRawMode(
  stdin: NodeJS.ReadStream,
): { setRaw: (on: boolean) => void; release: () => void } {
  const tty = stdin.isTTY === true;
  let raw = false;
  const setRaw = (on: boolean): void => {
    if (!tty || raw === on) return;
    stdin.setRawMode(on);
    raw = on;
  };
  const restore = (): void => setRaw(false);
  const handlers = RERAISE_SIGNALS.map((sig) => {
    const h = (): void => {
      restore();
      process.removeListener(sig, h);
      process.kill(process.pid, sig);
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  process.on('exit', restore);
  return {
    setRaw,
    release: () => {
      restore();
      process.removeListener('exit', restore);
      for (const [sig, h] of handlers) process.removeListener(sig, h);
    },
  };
}

/**
 * The output descriptor: writes buffered by Node up to writeHigh, then unwritable until 'drain'
 * (hostStreamWrite; a file or a pipe on stdout is written synchronously).
 */
function stdoutFd(
  m: LoopMachine, deliver: (i: HostInput) => void, writeHigh: number,
): { fd: VirtualFd; stop: () => void } {
  const stdout = process.stdout;
  const outFd: VirtualFd = vfdOpen(m.fdt, 'stdio-out', 'stream', (d) => hostStreamWrite(stdout, outFd, d, writeHigh));
  const onDrain = (): void => deliver({ kind: 'writable', fd: outFd.id, writable: true });
  stdout.on('drain', onDrain);
  return { fd: outFd, stop: () => stdout.removeListener('drain', onDrain) };
}

/**
 * The input descriptor: stdin chunks (tty signals filtered) through the boundary, paused above a
 * bound.
 */
function stdinFd(
  m: LoopMachine, deliver: (i: HostInput) => void, o: StdioOpenOptions, high: number, low: number,
): { fd: VirtualFd; stop: () => void } {
  const stdin = process.stdin;
  const inFd = vfdOpen(m.fdt, 'stdio-in', 'stream', () => -1);
  let pending = 0;
  let lastInbound = 0;
  let paused = false;
  const onData = (chunk: Buffer): void => {
    let data: Uint8Array = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length);
    if (o.signal) data = ttyIsigFilter(data, o.onSignal);
    if (data.length === 0) return;
    pending += data.length;
    deliver({ kind: 'data', fd: inFd.id, data });
    if (!paused && pending + inFd.inboundBytes >= high) {
      paused = true;
      stdin.pause();
    }
  };
  const onEnd = (): void => deliver({ kind: 'hup', fd: inFd.id });
  inFd.onInboundChange = (f) => {
    const delta = f.inboundBytes - lastInbound;
    lastInbound = f.inboundBytes;
    if (delta > 0) pending = Math.max(0, pending - delta);
    if (paused && pending + f.inboundBytes <= low) {
      paused = false;
      stdin.resume();
    }
  };
  stdin.on('data', onData);
  stdin.on('end', onEnd);
  stdin.resume();
  return {
    fd: inFd,
    stop: () => {
      stdin.removeListener('data', onData);
      stdin.removeListener('end', onEnd);
      stdin.pause();
    },
  };
}

/** A StdioProvider on process.stdin / process.stdout; inputs go through `deliver`. */
export function hostStdioProviderCreate(
  m: LoopMachine, deliver: (i: HostInput) => void, opts: HostStdioOptions = {},
): StdioProvider {
  const high = opts.pauseHighBytes ?? 64 * 1024;
  const low = opts.resumeLowBytes ?? 16 * 1024;
  const writeHigh = opts.writeHighBytes ?? 1024 * 1024;
  let open = false;
  return {
    open: (o) => {
      if (open) return { ok: false, error: 'cannot use stdio by multiple character devices' };
      open = true;
      const tty = ttyRawMode(process.stdin);
      const input = stdinFd(m, deliver, o, high, low);
      const out = stdoutFd(m, deliver, writeHigh);
      tty.setRaw(true);
      let closed = false;
      const ends: StdioEndpoints = {
        in: input.fd,
        out: out.fd,
        setEcho: (echo) => tty.setRaw(!echo),
        close: () => {
          if (closed) return;
          closed = true;
          open = false;
          input.stop();
          out.stop();
          tty.release();
        },
      };
      return { ok: true, ends };
    },
  };
}
