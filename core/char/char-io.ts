// Read-side flow control and fd watches (chardev/char-io.c, io/channel-watch.c). An IOWatchPoll
// is a source whose prepare asks the frontend whether it can read, every iteration: only while
// it can is a child watch attached on the descriptor, so bytes stay in the (virtual) socket
// buffer until the frontend wants them (spec §2.2). Invariants: iwp.child !== null iff the read
// watch was active at the last prepare (a child that removed itself stays non-null, as in QEMU,
// so it is not re-created); one read callback runs per dispatch.

import {
  type LoopMachine, type LoopSource, type VirtualFd, G_IO_ERR, G_IO_HUP, G_IO_IN,
  G_PRIORITY_DEFAULT, gSourceAttach, gSourceDestroy, vfdRevents,
} from '../loop/index.ts';
import { TRACE_CONTROL, traceEnter, traceExit } from '../trace/index.ts';
import { type Chardev, EAGAIN, EINVAL } from './char.ts';
import { chrWatchForget, chrWatchRegister } from './char-registry.ts';

/** An fd watch callback: the conditions that hold; return false to remove the watch. */
export type FdWatchFn = (cond: number) => boolean;

/** @qemu chardev/char-io.c IOWatchPoll */
export interface IoWatchPoll {
  name: string;
  parent: LoopSource;
  child: LoopSource | null;
  fd: VirtualFd;
  m: LoopMachine;
  /** fd_can_read: > 0 activates the read watch. */
  canRead: () => number;
  read: FdWatchFn;
  /** Trace span name of the read callback (tcp_chr_read, fd_chr_read). */
  readName: string;
  label: string;
}

/**
 * Attach a watch on `fd` for `cond` (qio_channel_create_watch + g_source_attach). It is ready
 * when the descriptor's poll conditions meet `cond`; a ready descriptor makes the poll not
 * block (prepare returns 0), as a ready fd makes ppoll return at once. The callback runs in a
 * trace span `spanName` when given.
 */
export function vfdAddWatch(
  m: LoopMachine, fd: VirtualFd, cond: number, name: string, priority: number, fn: FdWatchFn,
  spanName: string | null = null, spanArgs: Record<string, string> = {},
): LoopSource {
  const revents = (): number => (fd.closed ? 0 : vfdRevents(fd) & cond);
  const src: LoopSource = gSourceAttach(m.loop.sources, name, priority, {
    prepare: () => (revents() !== 0 ? 0 : -1),
    check: () => revents() !== 0,
    dispatch: () => {
      const ev = revents();
      if (ev === 0) return; // the condition went away earlier in this dispatch phase
      const opened = spanName ? traceEnter(m, TRACE_CONTROL, spanName, spanArgs) : false;
      let keep = true;
      try {
        keep = fn(ev);
      } finally {
        if (spanName) traceExit(m, opened, spanName);
      }
      if (!keep) gSourceDestroy(m.loop.sources, src);
    },
  });
  return src;
}

function ioWatchPollPrepare(iwp: IoWatchPoll): number {
  const nowActive = iwp.canRead() > 0;
  const wasActive = iwp.child !== null;
  if (wasActive === nowActive) return -1;
  // The child is attached after this source, so GLib (and detvm) prepare it in this same pass.
  if (nowActive) {
    iwp.child = vfdAddWatch(
      iwp.m, iwp.fd, G_IO_IN | G_IO_ERR | G_IO_HUP, `${iwp.name}-watch`, G_PRIORITY_DEFAULT,
      iwp.read, iwp.readName, { chardev: iwp.label },
    );
  } else {
    gSourceDestroy(iwp.m.loop.sources, iwp.child!);
    iwp.child = null;
  }
  return -1;
}

/**
 * Attach the flow-controlled read watch of `chr` on `fd`: `read` runs (traced as `readName`)
 * only in iterations whose prepare found `canRead() > 0`.
 * @qemu chardev/char-io.c io_add_watch_poll
 */
export function ioAddWatchPoll(
  chr: Chardev, fd: VirtualFd, canRead: () => number, read: FdWatchFn, readName: string,
): IoWatchPoll {
  const m = chr.m;
  const name = `chardev-iowatch-${chr.label}`;
  const iwp = {
    name, fd, m, canRead, read, readName, label: chr.label, child: null,
  } as unknown as IoWatchPoll;
  iwp.parent = gSourceAttach(m.loop.sources, name, G_PRIORITY_DEFAULT, {
    prepare: () => ioWatchPollPrepare(iwp),
    check: () => false,
    dispatch: () => {},
  });
  return iwp;
}

/** Detach an IOWatchPoll and its child. @qemu chardev/char-io.c io_remove_watch_poll */
export function ioRemoveWatchPoll(iwp: IoWatchPoll): void {
  const sources = iwp.m.loop.sources;
  if (iwp.child) {
    gSourceDestroy(sources, iwp.child);
    iwp.child = null;
  }
  gSourceDestroy(sources, iwp.parent);
}

/** Remove the chardev's read watch, if any. @qemu chardev/char-io.c remove_fd_in_watch */
export function removeFdInWatch(chr: Chardev): void {
  if (chr.gsource) {
    ioRemoveWatchPoll(chr.gsource);
    chr.gsource = null;
  }
}

/**
 * Send `buf` on `fd`, looping over short writes until the descriptor blocks. Returns the bytes
 * sent; when nothing could be sent returns -1 with chr.errno = EAGAIN (blocked) or EINVAL
 * (error: the peer is gone). @qemu chardev/char-io.c io_channel_send_full
 */
export function ioChannelSendFull(chr: Chardev, fd: VirtualFd, buf: Uint8Array): number {
  let offset = 0;
  for (let i = 0; offset < buf.length; i++) {
    const rest = offset === 0 ? buf : buf.subarray(offset);
    const ret = fd.closed ? -1 : fd.writable ? fd.write(rest) : 0;
    if (ret === 0 || i > buf.length) {
      if (offset > 0) return offset;
      chr.errno = EAGAIN;
      return -1;
    }
    if (ret < 0) {
      chr.errno = EINVAL;
      return -1;
    }
    offset += ret;
  }
  return offset;
}

/**
 * An output watch on `fd` for qemu_chr_fe_add_watch: registers the source under a new tag.
 * A watch on a descriptor that gets closed never fires again (QEMU's watch on a closed fd sees
 * only G_IO_NVAL, which no caller asks for). @qemu qio_channel_create_watch
 */
export function chrAddFdWatch(chr: Chardev, fd: VirtualFd, cond: number, fn: FdWatchFn): number {
  let tag = 0;
  const name = `chardev-watch-${chr.label}`;
  const src = vfdAddWatch(chr.m, fd, cond, name, G_PRIORITY_DEFAULT, (ev) => {
    const keep = fn(ev);
    if (!keep) chrWatchForget(chr.m, tag);
    return keep;
  });
  tag = chrWatchRegister(chr.m, src, fd.id);
  return tag;
}
