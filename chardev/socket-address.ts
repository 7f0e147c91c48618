// The filenames of a socket chardev, as `info chardev` and query-chardev show them
// (chardev/char-socket.c qemu_chr_socket_address, qemu_chr_compute_filename):
//   disconnected:tcp:127.0.0.1:4444,server=on        (listening, nobody connected)
//   tcp:127.0.0.1:4444,server=on <-> 127.0.0.1:52916  (connected; [brackets] for IPv6)
//   disconnected:unix:/tmp/s,server=on / unix:/tmp/s,server=on / unix:/tmp/s (client)
// plus parsing of the "host:port" / "unix:path" strings in-memory peers connect to.

import type { NetConnInfo, SocketAddress } from '../core/host/index.ts';

/** What the filename forms need to know about the chardev. */
export interface SocketNaming {
  isTelnet: boolean;
  isWebsock: boolean;
  isListen: boolean;
}

/** @qemu chardev/char-socket.c qemu_chr_socket_protocol */
export function qemuChrSocketProtocol(s: SocketNaming): string {
  if (s.isTelnet) return 'telnet';
  return s.isWebsock ? 'websocket' : 'tcp';
}

/** @qemu chardev/char-socket.c qemu_chr_socket_address */
export function qemuChrSocketAddress(s: SocketNaming, addr: SocketAddress, prefix: string): string {
  const server = s.isListen ? ',server=on' : '';
  switch (addr.type) {
    case 'inet':
      return `${prefix}${qemuChrSocketProtocol(s)}:${addr.host}:${addr.port}${server}`;
    case 'unix': {
      const abstract = addr.abstract ? ',abstract=on' : '';
      const tight = addr.abstract && addr.tight ? ',tight=on' : '';
      return `${prefix}unix:${addr.path}${abstract}${tight}${server}`;
    }
    case 'fd':
      return `${prefix}fd:${addr.str}${server}`;
  }
}

function hostPort(a: SocketAddress): [string, string, boolean] {
  if (a.type !== 'inet') return [a.type === 'unix' ? a.path : a.str, '', false];
  return [a.host, a.port, a.host.includes(':')];
}

/** The connected form. @qemu chardev/char-socket.c qemu_chr_compute_filename */
export function qemuChrComputeFilename(s: SocketNaming, info: NetConnInfo): string {
  if (info.local.type === 'unix' || info.peer.type === 'unix') {
    if (s.isListen) return `unix:${info.local.type === 'unix' ? info.local.path : ''},server=on`;
    return `unix:${info.peer.type === 'unix' ? info.peer.path : ''}`;
  }
  const [lh, lp, l6] = hostPort(info.local);
  const [ph, pp] = hostPort(info.peer);
  const left = l6 ? '[' : '';
  const right = l6 ? ']' : '';
  const server = s.isListen ? ',server=on' : '';
  const local = `${left}${lh}${right}:${lp}`;
  return `${qemuChrSocketProtocol(s)}:${local}${server} <-> ${left}${ph}${right}:${pp}`;
}

/**
 * A socket address from a peer-side string: "HOST:PORT", "tcp:HOST:PORT", "[V6]:PORT" or
 * "unix:PATH". Returns an error text for anything else.
 */
export function socketAddressParse(str: string): SocketAddress | string {
  if (str.startsWith('unix:')) {
    if (str.length === 5) return 'invalid Unix socket address';
    return { type: 'unix', path: str.slice(5), abstract: false, tight: true };
  }
  const s = str.startsWith('tcp:') ? str.slice(4) : str;
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(s) ?? /^([^:]*):(\d+)$/.exec(s);
  if (!m) return `error parsing address '${s}'`;
  return { type: 'inet', host: m[1]!, port: m[2]! };
}
