// The host I/O of a replay: a ChardevIo whose sockets, stdio and files are answered from the log.
// Each call the kernel makes returns the logged result with descriptors of the same ids; gap
// events open connections, settle listeners and set connector results; what the kernel writes is
// kept per descriptor (as a byte string, cheap to snapshot) and folded into the output hash, and
// a logged short write is reproduced with its back-pressure. Nothing touches the real host.

import type {
  ChardevIo, FileOpenResult, NetConnInfo, NetConnector, NetListener, SocketAddress, StdioEndpoints,
} from '../host/index.ts';
import { type LoopMachine, type VirtualFd, hostInputQueue, vfdClose, vfdOpen } from '../loop/index.ts';
import type { LogEvent } from './log-events.ts';
import { type PlayEngine, playAdvance, playDiverge, playExpect, playPeek } from './play.ts';
import { replayOutputAdd } from './replay-state.ts';

/** What the kernel wrote to one descriptor. */
export interface PlayOutput {
  name: string;
  /** The bytes as a latin1 string (one char per byte). */
  text: string;
}

/** Replay I/O state: plain data reachable from the machine, so snapshots rewind it. */
export interface PlayIoState {
  listeners: Map<number, NetListener>;
  connectors: Map<number, NetConnector>;
  writes: Map<number, number>;
  feeds: Map<number, number>;
  output: Map<number, PlayOutput>;
  onSignal: ((sig: 'SIGINT' | 'SIGQUIT') => void) | null;
}

export interface PlayIo extends ChardevIo {
  state: PlayIoState;
}

/** The logged result of host call `op`, or null after recording a divergence. */
export function replayPlayIoCall<T>(p: PlayEngine, op: string, args: unknown): T | null {
  const a = JSON.stringify(args);
  const e = playExpect(p, 'io', `called the host (${op}(${a}))`, (x) => x.op === op && x.args === a);
  return e ? (JSON.parse(e.result) as T) : null;
}
const ioResult = replayPlayIoCall;

function capture(st: PlayIoState, fd: VirtualFd, d: Uint8Array, n: number): void {
  if (n <= 0) return;
  let o = st.output.get(fd.id);
  if (!o) {
    o = { name: fd.name, text: '' };
    st.output.set(fd.id, o);
  }
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(d[i]!);
  o.text += s;
}

/** Open `name` and check it got the logged id (ids are part of what the kernel saw). */
function open(p: PlayEngine, st: PlayIoState, m: LoopMachine, name: string, kind: VirtualFd['kind'], want: number | null): VirtualFd {
  if (want !== null && m.fdt.nextId < want) m.fdt.nextId = want; // ids the host used for nothing
  const fd = vfdOpen(m.fdt, name, kind);
  if (want !== null && fd.id !== want) playDiverge(p, `descriptor '${name}' opened as fd ${fd.id}; the recording had fd ${want}`);
  fd.write = (d) => {
    const index = st.writes.get(fd.id) ?? 0;
    st.writes.set(fd.id, index + 1);
    let n = d.length;
    const e = playPeek(p);
    if (e && e.k === 'write' && e.fd === fd.id && e.index === index) {
      playAdvance(p);
      n = e.result;
      fd.writable = e.writable;
    }
    // Live logs hash host output here; virtual ones hash every descriptor (replayWrapOutputs).
    if (p.header.mode === 'live') replayOutputAdd(p.rt, fd.id, d, n);
    capture(st, fd, d, n);
    if (n > 0) p.hooks.output?.(fd.name, d.subarray(0, n));
    return n;
  };
  fd.onInboundChange = () => {
    const ordinal = (st.feeds.get(fd.id) ?? 0) + 1;
    st.feeds.set(fd.id, ordinal);
    feed(p, m, fd.id, ordinal);
  };
  return fd;
}

/** Queue the file input the host read during onInboundChange call `ordinal` of `fd`. */
function feed(p: PlayEngine, m: LoopMachine, fd: number, ordinal: number): void {
  for (let i = 0; i < 1_000_000; i++) {
    const e = playPeek(p);
    if (!e || e.k !== 'arrive' || e.ordinal !== ordinal || e.input.fd !== fd) return;
    playAdvance(p);
    hostInputQueue(m.fdt, e.input);
  }
}

function playListen(p: PlayEngine, st: PlayIoState, m: LoopMachine, addr: SocketAddress, backlog: number, name: string): NetListener {
  const r = ioResult<{ fd: number; status: NetListener['status']; error: string | null; local: SocketAddress | null }>(p, 'listen', [addr, backlog, name]);
  const fd = open(p, st, m, name, 'listener', r?.fd ?? null);
  const l: NetListener = {
    fd, status: r?.status ?? 'failed', error: r ? r.error : 'replay diverged', local: r?.local ?? null, onSettled: null,
    close: () => vfdClose(m.fdt, fd),
  };
  st.listeners.set(fd.id, l);
  return l;
}

function playConnect(p: PlayEngine, st: PlayIoState, m: LoopMachine, addr: SocketAddress, name: string): NetConnector {
  const r = ioResult<{ fd: number; status: NetConnector['status']; error: string | null }>(p, 'connect', [addr, name]);
  const fd = open(p, st, m, `${name}-connect`, 'listener', r?.fd ?? null);
  const c: NetConnector = { fd, status: r?.status ?? 'failed', error: r ? r.error : 'replay diverged', cancel: () => vfdClose(m.fdt, fd) };
  st.connectors.set(fd.id, c);
  return c;
}

function playStdioOpen(p: PlayEngine, st: PlayIoState, m: LoopMachine, onSignal: (sig: 'SIGINT' | 'SIGQUIT') => void, signal: boolean):
  { ok: true; ends: StdioEndpoints } | { ok: false; error: string } {
  const r = ioResult<{ ok: boolean; error?: string; in?: number; out?: number }>(p, 'stdio.open', [{ signal }]);
  if (!r || !r.ok) return { ok: false, error: r?.error ?? 'replay diverged' };
  const inFd = open(p, st, m, 'stdio-in', 'stream', r.in ?? null);
  const outFd = open(p, st, m, 'stdio-out', 'stream', r.out ?? null);
  st.onSignal = onSignal;
  return { ok: true, ends: { in: inFd, out: outFd, setEcho: () => {}, close: () => {} } };
}

function playFile(p: PlayEngine, st: PlayIoState, m: LoopMachine, op: string, args: unknown[], name: string): FileOpenResult {
  const r = ioResult<{ ok: boolean; fd?: number; error?: string }>(p, op, args);
  if (!r || !r.ok) return { ok: false, error: r?.error ?? 'replay diverged' };
  const fd = open(p, st, m, name, 'stream', r.fd ?? null);
  feed(p, m, fd.id, 0);
  return { ok: true, fd };
}

/** The replay I/O of machine `m`; also wires the engine's gap events that concern descriptors. */
export function replayPlayIo(p: PlayEngine, m: LoopMachine): PlayIo {
  const st: PlayIoState = {
    listeners: new Map(), connectors: new Map(), writes: new Map(), feeds: new Map(), output: new Map(), onSignal: null,
  };
  p.hooks.openFd = (e) => void open(p, st, m, e.name, e.listener ? 'listener' : 'stream', e.fd);
  p.hooks.settle = (e) => {
    const l = st.listeners.get(e.fd);
    if (!l) return playDiverge(p, `the log settles listener fd ${e.fd}, which the replay does not have`);
    l.status = e.status;
    l.error = e.error;
    l.local = e.local;
    l.onSettled?.(l);
  };
  p.hooks.connector = (e) => {
    const c = st.connectors.get(e.fd);
    if (!c) return playDiverge(p, `the log sets connector fd ${e.fd}, which the replay does not have`);
    if (e.field === 'status') c.status = e.value as NetConnector['status'];
    else c.error = e.value as string | null;
  };
  p.hooks.stdioSignal = (sig) => st.onSignal?.(sig);
  return {
    kind: 'host',
    state: st,
    net: {
      kind: 'host',
      listen: (addr, backlog, name) => playListen(p, st, m, addr, backlog, name),
      connect: (addr, name) => playConnect(p, st, m, addr, name),
      connInfo: (id) => ioResult<NetConnInfo | null>(p, 'connInfo', [id]),
      setNodelay: () => {},
    },
    stdio: { open: (o) => playStdioOpen(p, st, m, o.onSignal, o.signal) },
    files: {
      openOut: (path, append) => playFile(p, st, m, 'files.openOut', [path, append], `file-out:${path}`),
      openIn: (path) => playFile(p, st, m, 'files.openIn', [path], `file-in:${path}`),
    },
  };
}

/**
 * Virtual-mode logs run on the in-memory I/O; descriptors opened from outside the loop (memory
 * peers) are re-opened with a writer that keeps what the kernel sends them, and their connection
 * info answers connInfo.
 */
export function replayPlayVirtualIo(p: PlayEngine, m: LoopMachine, io: ChardevIo): ChardevIo {
  const st: PlayIoState = {
    listeners: new Map(), connectors: new Map(), writes: new Map(), feeds: new Map(), output: new Map(), onSignal: null,
  };
  const infos = new Map<number, NetConnInfo>();
  p.hooks.openFd = (e: Extract<LogEvent, { k: 'fd-open' }>) => {
    const fd = open(p, st, m, e.name, e.listener ? 'listener' : 'stream', e.fd);
    fd.onInboundChange = null;
    if (e.info) infos.set(fd.id, e.info);
  };
  const net = Object.create(io.net) as ChardevIo['net'];
  net.connInfo = (id) => infos.get(id) ?? io.net.connInfo(id);
  return { kind: io.kind, net, stdio: io.stdio, files: io.files, state: st } as PlayIo;
}

/** What the kernel wrote per descriptor during the replay. */
export function replayPlayOutputs(io: ChardevIo): PlayOutput[] {
  const st = (io as Partial<PlayIo>).state;
  return st ? [...st.output.values()] : [];
}
