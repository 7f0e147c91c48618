// Which outside world the chardevs of a machine talk to. By default (virtual mode, tests,
// library use) an in-memory one: a deterministic network (memory-net.ts), an in-memory terminal
// (memory-stdio.ts) and the real file system (files are inputs like the guest image). The live
// CLI installs the real host with `chardevSetIo(m, hostIoCreate(m))` before creating chardevs.

import { charState } from '../core/char/index.ts';
import { type ChardevIo, hostFileProviderCreate } from '../core/host/index.ts';
import type { LoopMachine } from '../core/loop/index.ts';
import { type MemoryNet, memoryDeliver, memoryNetCreate } from './memory-net.ts';
import { type MemoryStdio, memoryStdioCreate } from './memory-stdio.ts';

export interface MemoryIo extends ChardevIo {
  readonly kind: 'memory';
  net: MemoryNet;
  stdio: MemoryStdio;
}

/** In-memory sockets and terminal for `m`, real files with virtual-time delivery. */
export function memoryIoCreate(m: LoopMachine): MemoryIo {
  return {
    kind: 'memory',
    net: memoryNetCreate(m),
    stdio: memoryStdioCreate(m),
    files: hostFileProviderCreate(m, (i) => memoryDeliver(m, i)),
  };
}

/** The machine's chardev I/O, creating the in-memory default on first use. */
export function chardevIo(m: LoopMachine): ChardevIo {
  const s = charState(m);
  if (!s.io) s.io = memoryIoCreate(m);
  return s.io;
}

/** The machine's in-memory I/O; throws if the machine was given real host I/O. */
export function chardevMemoryIo(m: LoopMachine): MemoryIo {
  const io = chardevIo(m);
  if (io.kind !== 'memory') {
    throw new Error('this machine uses real host I/O, not the in-memory one');
  }
  return io as MemoryIo;
}

/**
 * Choose the machine's chardev I/O (e.g. hostIoCreate(m) for live mode). Must happen before
 * the first chardev is created: existing chardevs keep the I/O they were opened with.
 */
export function chardevSetIo(m: LoopMachine, io: ChardevIo): void {
  charState(m).io = io;
}
