// An in-memory network for virtual mode and tests: listeners keyed by address, connections as
// pairs of VirtualFds whose bytes, accepts and hang-ups travel through the input boundary at the
// current virtual time (delivered in the next poll, as a loopback socket would). Everything is
// deterministic: ephemeral ports come from a counter, never from the OS. Peers driven by tests
// are in memory-peer.ts. Invariants: a key maps to at most one listener; a connection's two
// ends are both registered in `ends` until closed.

import type {
  NetConnInfo, NetConnectResult, NetConnector, NetListener, NetProvider, SocketAddress,
} from '../core/host/index.ts';
import {
  type HostInput, type LoopMachine, type VirtualFd, hostInputAt, vfdClose, vfdOpen,
} from '../core/loop/index.ts';

/** First ephemeral port handed out for port 0 and for client ends. */
export const MEMORY_NET_EPHEMERAL_BASE = 40000;

/** Someone listening: a kernel listener (socket chardev server) or a test's peer server. */
export type MemoryListenEntry =
  | { kind: 'kernel'; listener: NetListener; local: SocketAddress }
  | { kind: 'peer'; local: SocketAddress; onConnect: (end: VirtualFd, info: NetConnInfo) => void };

export interface MemoryNet extends NetProvider {
  readonly kind: 'memory';
  m: LoopMachine;
  listeners: Map<string, MemoryListenEntry>;
  nextPort: number;
  /** Connection info of every kernel-side connection end, by fd id. */
  ends: Map<number, NetConnInfo>;
  /** TCP_NODELAY per end (recorded only: there is no Nagle in memory). */
  nodelay: Map<number, boolean>;
}

/** Deliver at the current virtual time (the next poll). */
export function memoryDeliver(m: LoopMachine, input: HostInput): void {
  hostInputAt(m.fdt, m.clocks.simNs, input);
}

function normHost(host: string): string {
  if (host === '' || host === '0.0.0.0' || host === '::') return '*';
  if (host === 'localhost') return '127.0.0.1';
  return host;
}

/** The listener key of an address ('unix:/p', 'inet:*:4444'). */
export function memoryNetKey(addr: SocketAddress): string {
  if (addr.type === 'unix') return `unix:${addr.abstract ? '@' : ''}${addr.path}`;
  if (addr.type === 'inet') return `inet:${normHost(addr.host)}:${addr.port}`;
  return `fd:${addr.str}`;
}

/** Find who listens on `addr` (a wildcard listener matches any host on its port). */
export function memoryNetLookup(net: MemoryNet, addr: SocketAddress): MemoryListenEntry | null {
  const exact = net.listeners.get(memoryNetKey(addr));
  if (exact) return exact;
  if (addr.type === 'inet') return net.listeners.get(`inet:*:${addr.port}`) ?? null;
  return null;
}

/** Reserve `addr` (port 0 becomes an ephemeral port). Returns the bound address or QEMU's error. */
export function memoryNetBind(net: MemoryNet, addr: SocketAddress): SocketAddress | string {
  if (addr.type === 'fd') return "'fd' socket addresses are not supported by detvm";
  if (addr.type === 'unix') {
    if (net.listeners.has(memoryNetKey(addr))) {
      return `Failed to bind socket to ${addr.path}: Address already in use`;
    }
    return addr;
  }
  const port = addr.port === '0' ? String(net.nextPort++) : addr.port;
  let host = addr.host;
  if (host === '') host = '0.0.0.0';
  else if (host === 'localhost') host = '127.0.0.1';
  const bound: SocketAddress = { type: 'inet', host, port };
  const norm = normHost(bound.host);
  for (const key of net.listeners.keys()) {
    const [kind, h, p] = key.split(':');
    if (kind === 'inet' && p === port && (h === norm || h === '*' || norm === '*')) {
      return 'Failed to find an available port: Address already in use';
    }
  }
  return bound;
}

/** The connection refused/absent error. @qemu util/qemu-sockets.c inet_connect_addr */
export function memoryConnectError(addr: SocketAddress): string {
  if (addr.type === 'unix') return `Failed to connect to '${addr.path}': Connection refused`;
  if (addr.type === 'inet') {
    return `Failed to connect to '${addr.host}:${addr.port}': Connection refused`;
  }
  return "'fd' socket addresses are not supported by detvm";
}

/** A client-side local address (127.0.0.1:ephemeral, or the unix path). */
export function memoryClientAddr(net: MemoryNet, target: SocketAddress): SocketAddress {
  if (target.type === 'unix') return target;
  return { type: 'inet', host: '127.0.0.1', port: String(net.nextPort++) };
}

/** The address a client sees for a listener bound to a wildcard host. */
function peerVisible(local: SocketAddress): SocketAddress {
  if (local.type === 'inet' && normHost(local.host) === '*') return { ...local, host: '127.0.0.1' };
  return local;
}

/**
 * Two kernel ends wired to each other: bytes written on one arrive on the other in the next
 * poll; closing one hangs up the other; writing towards a closed end fails (EPIPE).
 */
function memoryPair(net: MemoryNet, name: string, clientInfo: NetConnInfo): [VirtualFd, VirtualFd] {
  const m = net.m;
  const sendTo = (to: () => VirtualFd) => (d: Uint8Array): number => {
    const dst = to();
    if (dst.closed) return -1;
    memoryDeliver(m, { kind: 'data', fd: dst.id, data: d.slice() });
    return d.length;
  };
  const a: VirtualFd = vfdOpen(m.fdt, `${name}-client`, 'stream', sendTo(() => b));
  const b: VirtualFd = vfdOpen(m.fdt, `${name}-server`, 'stream', sendTo(() => a));
  a.onClose = () => {
    net.ends.delete(a.id);
    memoryDeliver(m, { kind: 'hup', fd: b.id });
  };
  b.onClose = () => {
    net.ends.delete(b.id);
    memoryDeliver(m, { kind: 'hup', fd: a.id });
  };
  net.ends.set(a.id, clientInfo);
  net.ends.set(b.id, { local: clientInfo.peer, peer: clientInfo.local });
  return [a, b];
}

/** Connect to `addr` now; the listening side learns of it in the next poll. */
function memoryConnectNow(net: MemoryNet, addr: SocketAddress, name: string): NetConnectResult {
  const entry = memoryNetLookup(net, addr);
  if (!entry || (entry.kind === 'kernel' && entry.listener.fd.closed)) {
    return { ok: false, error: memoryConnectError(addr) };
  }
  const info: NetConnInfo = { local: memoryClientAddr(net, addr), peer: peerVisible(entry.local) };
  if (entry.kind === 'peer') {
    const end = vfdOpen(net.m.fdt, `${name}-client`, 'stream');
    net.ends.set(end.id, info);
    entry.onConnect(end, info);
    return { ok: true, conn: end };
  }
  const [client, server] = memoryPair(net, name, info);
  memoryDeliver(net.m, { kind: 'accept', fd: entry.listener.fd.id, conn: server.id });
  return { ok: true, conn: client };
}

/** Bind and listen at once (a memory listener never waits). */
function memoryListen(net: MemoryNet, addr: SocketAddress, name: string): NetListener {
  const m = net.m;
  const fd = vfdOpen(m.fdt, name, 'listener');
  const bound = memoryNetBind(net, addr);
  const l: NetListener = {
    fd, status: 'listening', error: null, local: null, onSettled: null,
    close: () => {
      if (typeof bound !== 'string' && net.listeners.get(memoryNetKey(bound))?.kind === 'kernel') {
        net.listeners.delete(memoryNetKey(bound));
      }
      vfdClose(m.fdt, fd);
    },
  };
  if (typeof bound === 'string') {
    l.status = 'failed';
    l.error = bound;
    return l;
  }
  l.local = bound;
  net.listeners.set(memoryNetKey(bound), { kind: 'kernel', listener: l, local: bound });
  return l;
}

/** A background connect whose result reaches the connector in the next poll. */
function memoryConnect(net: MemoryNet, addr: SocketAddress, name: string): NetConnector {
  const m = net.m;
  const cfd = vfdOpen(m.fdt, `${name}-connect`, 'listener');
  const cancel = (): void => vfdClose(m.fdt, cfd);
  const c: NetConnector = { fd: cfd, status: 'pending', error: null, cancel };
  const r = memoryConnectNow(net, addr, name);
  if (r.ok) {
    c.status = 'connected';
    memoryDeliver(m, { kind: 'accept', fd: cfd.id, conn: r.conn.id });
  } else {
    c.status = 'failed';
    c.error = r.error;
    memoryDeliver(m, { kind: 'hup', fd: cfd.id });
  }
  return c;
}

/** A new in-memory network for machine `m`. */
export function memoryNetCreate(m: LoopMachine): MemoryNet {
  const net: MemoryNet = {
    kind: 'memory', m, listeners: new Map(), nextPort: MEMORY_NET_EPHEMERAL_BASE, ends: new Map(),
    nodelay: new Map(),
    listen: (addr, _backlog, name) => memoryListen(net, addr, name),
    connect: (addr, name) => memoryConnect(net, addr, name),
    connectSync: (addr, name) => memoryConnectNow(net, addr, name),
    connInfo: (id) => net.ends.get(id) ?? null,
    setNodelay: (id, on) => {
      net.nodelay.set(id, on);
    },
  };
  return net;
}
