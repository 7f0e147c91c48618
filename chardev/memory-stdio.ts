// An in-memory terminal for the stdio chardev in virtual mode and tests: input is scheduled at
// virtual times through the boundary, output is collected. With signal=on the INTR/QUIT
// characters of scheduled input raise the signal hook when the input is scheduled (a real tty
// raises it when the byte is typed) and never reach the chardev.

import {
  type StdioEndpoints, type StdioOpenOptions, type StdioProvider, ttyIsigFilter,
} from '../core/host/index.ts';
import { type LoopMachine, type VirtualFd, hostInputAt, vfdOpen } from '../core/loop/index.ts';

export interface MemoryStdio extends StdioProvider {
  m: LoopMachine;
  ends: StdioEndpoints | null;
  opts: StdioOpenOptions | null;
  output: Uint8Array[];
  outputBytes: number;
  /** false while the terminal is in raw mode (the chardev is open). */
  echo: boolean;
}

/** A fresh in-memory terminal for `m`. */
export function memoryStdioCreate(m: LoopMachine): MemoryStdio {
  const st: MemoryStdio = {
    m, ends: null, opts: null, output: [], outputBytes: 0, echo: true,
    open(opts) {
      if (st.ends) return { ok: false, error: 'cannot use stdio by multiple character devices' };
      const inFd: VirtualFd = vfdOpen(m.fdt, 'stdio-in', 'stream', () => -1);
      const outFd: VirtualFd = vfdOpen(m.fdt, 'stdio-out', 'stream', (d) => {
        st.output.push(d.slice());
        st.outputBytes += d.length;
        return d.length;
      });
      st.opts = opts;
      st.echo = false;
      const ends: StdioEndpoints = {
        in: inFd, out: outFd,
        setEcho: (echo) => {
          st.echo = echo;
        },
        close: () => {
          if (st.ends !== ends) return;
          st.ends = null;
          st.opts = null;
          st.echo = true;
        },
      };
      st.ends = ends;
      return { ok: true, ends };
    },
  };
  return st;
}

/** Type `data` on the terminal at `atNs` (default now). No-op while no stdio chardev is open. */
export function memoryStdioInput(st: MemoryStdio, data: Uint8Array | string, atNs?: number): void {
  if (!st.ends || !st.opts) return;
  let bytes: Uint8Array = typeof data === 'string' ? new TextEncoder().encode(data) : data.slice();
  if (st.opts.signal) bytes = ttyIsigFilter(bytes, st.opts.onSignal);
  if (bytes.length === 0) return;
  const at = atNs ?? st.m.clocks.simNs;
  hostInputAt(st.m.fdt, at, { kind: 'data', fd: st.ends.in.id, data: bytes });
}

/** End of input (^D on an empty line, a closed pipe) at `atNs` (default now). */
export function memoryStdioEof(st: MemoryStdio, atNs?: number): void {
  if (!st.ends) return;
  hostInputAt(st.m.fdt, atNs ?? st.m.clocks.simNs, { kind: 'hup', fd: st.ends.in.id });
}

/** Everything written to the terminal so far, as a binary string (one char per byte). */
export function memoryStdioText(st: MemoryStdio): string {
  let s = '';
  for (const c of st.output) for (const b of c) s += String.fromCharCode(b);
  return s;
}
