// Migration transports (migration/socket.c, exec.c, fd.c, file.c; util/qemu-sockets.c
// inet_parse): URIs tcp:HOST:PORT, unix:PATH, file:PATH (QEMU 8.2+; detvm has it on 7.2's
// commands), fd:NAME (a named descriptor registered on the machine, e.g. an in-memory pipe to
// another machine) and exec:CMD (only with a host exec provider). Every transport ends as a
// stream VirtualFd, so bytes leave and arrive through the input boundary like any socket's. The
// outgoing side queues what the descriptor does not accept yet and reports write errors with
// QEMU's texts ("Unable to write to socket: Broken pipe").
// The outgoing writer donates its buffers: host adapters hand views of them to the OS without
// copying (hostWriteDonate), and the queue keeps views; the writer reuses a buffer only when
// neither kept it (hostWriteKept), else continues in fresh memory.
// Invariant: a channel's queue holds only views of buffers the writer no longer writes.

import {
  type LoopMachine, type VirtualFd, G_IO_HUP, G_IO_IN, G_IO_OUT, G_PRIORITY_DEFAULT, gSourceDestroy,
  hostInputAt, vfdAccept, vfdClose, vfdOpen,
} from '../loop/index.ts';
import { vfdAddWatch } from '../char/index.ts';
import {
  type SocketAddress, hostWriteDonate, hostWriteTakeKept,
} from '../host/types.ts';
import type { MigrationChannel, MigrationMachine } from './migration-state.ts';

/** A parsed migration URI. */
export type MigrationUri =
  | { kind: 'socket'; addr: SocketAddress; text: string }
  | { kind: 'file'; path: string }
  | { kind: 'fd'; name: string }
  | { kind: 'exec'; cmd: string };

/** The address part of a tcp: URI. @qemu util/qemu-sockets.c inet_parse */
function inetParse(str: string): SocketAddress | string {
  let m: RegExpExecArray | null;
  if (str.startsWith(':')) {
    m = /^:([^,]{1,32})/.exec(str);
    if (!m) return `error parsing port in address '${str}'`;
    return { type: 'inet', host: '', port: m[1]! };
  }
  if (str.startsWith('[')) {
    m = /^\[([^\]]{1,64})\]:([^,]{1,32})/.exec(str);
    if (!m) return `error parsing IPv6 address '${str}'`;
    return { type: 'inet', host: m[1]!, port: m[2]! };
  }
  m = /^([^:]{1,64}):([^,]{1,32})/.exec(str);
  if (!m) return `error parsing address '${str}'`;
  return { type: 'inet', host: m[1]!, port: m[2]! };
}

/**
 * Parse a URI. `unknown` is the error for an unknown scheme: outgoing migrations say
 * "Parameter 'uri' expects a valid migration protocol", incoming ones "unknown migration
 * protocol: URI". @qemu qmp_migrate, qemu_start_incoming_migration
 */
export function migrationUriParse(
  uri: string, unknown: string,
): MigrationUri | { error: string; unknown: boolean } {
  if (uri.startsWith('tcp:')) {
    const a = inetParse(uri.slice(4));
    return typeof a === 'string' ? { error: a, unknown: false } : { kind: 'socket', addr: a, text: uri };
  }
  if (uri.startsWith('unix:')) {
    const addr: SocketAddress = { type: 'unix', path: uri.slice(5), abstract: false, tight: true };
    return { kind: 'socket', addr, text: uri };
  }
  if (uri.startsWith('file:')) return { kind: 'file', path: uri.slice(5) };
  if (uri.startsWith('fd:')) return { kind: 'fd', name: uri.slice(3) };
  if (uri.startsWith('exec:')) return { kind: 'exec', cmd: uri.slice(5) };
  return { error: unknown, unknown: true };
}

/** The `fd:` descriptor named `name`. @qemu monitor_get_fd */
export function migrationFdLookup(m: MigrationMachine, name: string): VirtualFd | string {
  const fd = m.migration.fds.get(name);
  if (fd === undefined || fd.closed) return `File descriptor named '${name}' has not been found`;
  return fd;
}

export function migrationChannelCreate(fd: VirtualFd, kind: MigrationChannel['kind']): MigrationChannel {
  return { fd, kind, queue: [], queued: 0, error: null, watch: null };
}

function channelFail(ch: MigrationChannel, reason: string): void {
  ch.error ??= `Unable to write to ${ch.kind}: ${reason}`;
  ch.queue = [];
  ch.queued = 0;
}

/**
 * Hand queued bytes to the descriptor until it stops accepting them. Returns the bytes still
 * queued; a failed write or a peer that hung up sets `ch.error`.
 */
export function migrationChannelFlush(ch: MigrationChannel): number {
  const fd = ch.fd;
  for (let guard = 0; ch.queue.length > 0 && ch.error === null; guard++) {
    if (fd.closed || fd.hup) {
      channelFail(ch, 'Broken pipe');
      break;
    }
    if (!fd.writable) break;
    const head = ch.queue[0]!;
    const n = fd.write(head);
    if (n < 0) {
      channelFail(ch, 'Broken pipe');
      break;
    }
    ch.queued -= n;
    if (n === head.length) ch.queue.shift();
    else ch.queue[0] = head.subarray(n);
    if (n < head.length) break;
    if (guard > 1_000_000) break;
  }
  return ch.queued;
}

/**
 * The sink of a donating writer: try the descriptor directly, queue (a view of) what it did not
 * take. Returns 1 when `bytes` is kept (queued, or held by the host adapter), so the writer must
 * not reuse it; 0 when it may; -EIO (-5) once the channel has failed.
 */
export function migrationChannelWrite(ch: MigrationChannel, bytes: Uint8Array): number {
  if (ch.error !== null) return -5;
  hostWriteDonate(bytes);
  // Drain the queue first: bytes go out in order.
  if (ch.queue.length > 0 && migrationChannelFlush(ch) > 0) {
    ch.queue.push(bytes);
    ch.queued += bytes.length;
    return 1;
  }
  hostWriteTakeKept();
  if (ch.error !== null) return -5;
  const fd = ch.fd;
  if (fd.closed || fd.hup) {
    channelFail(ch, 'Broken pipe');
    return -5;
  }
  const n = fd.writable ? fd.write(bytes) : 0;
  if (n < 0) {
    channelFail(ch, 'Broken pipe');
    return -5;
  }
  if (n === bytes.length) return hostWriteTakeKept() ? 1 : 0;
  const rest = bytes.subarray(n);
  ch.queue.push(rest);
  ch.queued += rest.length;
  return 1;
}


/** Run `fn` once the descriptor is writable again (or hung up); replaces an earlier wait. */
export function migrationChannelWaitWritable(m: LoopMachine, ch: MigrationChannel, fn: () => void): void {
  migrationChannelStopWait(m, ch);
  ch.watch = vfdAddWatch(m, ch.fd, G_IO_OUT | G_IO_HUP, 'migration-out', G_PRIORITY_DEFAULT, () => {
    ch.watch = null;
    fn();
    return false;
  });
}

export function migrationChannelStopWait(m: LoopMachine, ch: MigrationChannel): void {
  if (ch.watch !== null) gSourceDestroy(m.loop.sources, ch.watch);
  ch.watch = null;
}

/** Close the channel's descriptor (what is queued is dropped). */
export function migrationChannelClose(m: LoopMachine, ch: MigrationChannel): void {
  migrationChannelStopWait(m, ch);
  ch.queue = [];
  ch.queued = 0;
  vfdClose(m.fdt, ch.fd);
}

/** A pending connection; `onDone` gets the connected descriptor or QEMU's error text. */
export function migrationConnect(
  m: MigrationMachine, addr: SocketAddress, onDone: (r: VirtualFd | string) => void,
): { fd: VirtualFd; cancel: () => void } | string {
  const io = m.migration.io?.();
  if (!io) return 'migration over sockets needs the machine\'s host I/O';
  const c = io.net.connect(addr, 'migration');
  vfdAddWatch(m, c.fd, G_IO_IN | G_IO_HUP, 'migration-connect', G_PRIORITY_DEFAULT, () => {
    const id = vfdAccept(c.fd);
    const conn = id === null ? undefined : m.fdt.fds.get(id);
    vfdClose(m.fdt, c.fd);
    onDone(conn ?? c.error ?? 'Connection refused');
    return false;
  });
  return { fd: c.fd, cancel: () => c.cancel() };
}

/**
 * Listen for the incoming migration; `onConn` gets the first connection, after which the
 * listener is closed (QEMU stops listening once the migration channel is established).
 * Returns the bound address text for `info migrate`, or QEMU's error text.
 */
export function migrationListen(
  m: MigrationMachine, addr: SocketAddress, onConn: (fd: VirtualFd) => void,
  onError: (err: string) => void,
): { close: () => void; fd: VirtualFd; address: () => SocketAddress } | string {
  const io = m.migration.io?.();
  if (!io) return 'migration over sockets needs the machine\'s host I/O';
  const l = io.net.listen(addr, 1, 'migration-listen');
  if (l.status === 'failed') return l.error ?? 'Failed to bind socket';
  if (l.status === 'pending') {
    l.onSettled = (settled) => {
      if (settled.status === 'failed') onError(settled.error ?? 'Failed to bind socket');
    };
  }
  const watch = vfdAddWatch(m, l.fd, G_IO_IN, 'migration-listen', G_PRIORITY_DEFAULT, () => {
    const id = vfdAccept(l.fd);
    const conn = id === null ? undefined : m.fdt.fds.get(id);
    if (conn === undefined) return true;
    l.close();
    onConn(conn);
    return false;
  });
  const address = (): SocketAddress => l.local ?? addr;
  return {
    fd: l.fd,
    address,
    close: () => {
      gSourceDestroy(m.loop.sources, watch);
      l.close();
    },
  };
}

/**
 * An in-memory pipe from machine `src` to machine `dst` (both in virtual mode, driven by the same
 * caller), registered as `fd:NAME` on both: bytes `src` writes arrive at `dst` through its input
 * boundary at its current virtual time, and closing the source end hangs up the other. Returns
 * the two descriptors.
 */
export function migrationPipeCreate(
  src: MigrationMachine, dst: MigrationMachine, name: string,
): { out: VirtualFd; in: VirtualFd } {
  const inFd = vfdOpen(dst.fdt, `migration-pipe-in:${name}`, 'stream', () => -1);
  const outFd = vfdOpen(src.fdt, `migration-pipe-out:${name}`, 'stream', (d) => {
    if (inFd.closed) return -1;
    hostInputAt(dst.fdt, dst.clocks.simNs, { kind: 'data', fd: inFd.id, data: d.slice() });
    return d.length;
  });
  outFd.onClose = () => {
    if (!inFd.closed) hostInputAt(dst.fdt, dst.clocks.simNs, { kind: 'hup', fd: inFd.id });
  };
  inFd.onClose = () => {
    if (!outFd.closed) hostInputAt(src.fdt, src.clocks.simNs, { kind: 'hup', fd: outFd.id });
  };
  src.migration.fds.set(name, outFd);
  dst.migration.fds.set(name, inFd);
  return { out: outFd, in: inFd };
}

/** How `info migrate` shows a socket address. @qemu util/qemu-sockets.c socket_uri */
export function socketUri(a: SocketAddress): string {
  if (a.type === 'inet') return `tcp:${a.host}:${a.port}`;
  if (a.type === 'unix') return `unix:${a.path}`;
  return `fd:${a.str}`;
}
