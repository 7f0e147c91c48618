// Writing a VirtualFd's bytes to a Node stream (a socket, a pipe, stdout) with bounded Node-side
// buffering. Node may hand a write to the OS at once (writableLength back to 0, and then no
// 'drain' comes), so writing goes on while there is room, and the descriptor turns unwritable
// only with `high` bytes buffered, where the last write returned false and 'drain' follows
// (the caller turns that into a `writable` input). Donated bytes (hostWriteDonate: a migration
// stream) go to Node as views, and the writer is told when Node kept one; others are copied.

import type { Writable } from 'node:stream';
import type { VirtualFd } from '../loop/index.ts';
import { hostWriteIsDonated, hostWriteKept } from './types.ts';

/** Write what fits of `d`; returns the bytes taken. `highDonated` applies to donated bytes. */
export function hostStreamWrite(w: Writable, fd: VirtualFd, d: Uint8Array, high: number, highDonated = high): number {
  const donated = hostWriteIsDonated(d);
  const limit = donated ? highDonated : high;
  let n = 0;
  while (n < d.length) {
    const space = limit - w.writableLength;
    if (space <= 0) {
      fd.writable = false;
      break;
    }
    const k = Math.min(space, d.length - n);
    w.write(donated ? Buffer.from(d.buffer, d.byteOffset + n, k) : Buffer.from(d.subarray(n, n + k)));
    n += k;
  }
  if (donated && w.writableLength > 0) hostWriteKept();
  return n;
}
