// The recording wrapper around the live host I/O (core/host): every call the kernel makes to the
// socket, stdio and file providers is run for real and its result logged; the descriptors they
// return are wrapped (short writes, output hash, on-demand file reads). Listeners and connectors
// reach the kernel as mirror objects, so what the host later settles (a bound address, a
// connection result) is logged before the kernel can see it. Invariant: the kernel never holds a
// host object whose state the host changes behind the log's back.

import type {
  ChardevIo, FileOpenResult, NetConnector, NetListener, NetProvider, SocketAddress, StdioProvider,
} from '../host/index.ts';
import { type RecordEngine, recordConnector, recordWrapFd, replayRecordEvent, replayRecordIoCall } from './record.ts';

function fileResult(r: FileOpenResult): unknown {
  return r.ok ? { ok: true, fd: r.fd.id } : { ok: false, error: r.error };
}

/** A listener as the kernel sees it: the host's settle is logged, then copied in. */
function mirrorListener(rec: RecordEngine, host: NetListener): NetListener {
  const k: NetListener = {
    fd: host.fd, status: host.status, error: host.error, local: host.local, onSettled: null,
    close: () => host.close(),
  };
  host.onSettled = (h) => {
    replayRecordEvent(rec, { k: 'settled', fd: h.fd.id, status: h.status === 'failed' ? 'failed' : 'listening', error: h.error, local: h.local });
    k.status = h.status;
    k.error = h.error;
    k.local = h.local;
    k.onSettled?.(k);
  };
  return k;
}

function mirrorConnector(rec: RecordEngine, host: NetConnector): NetConnector {
  const k: NetConnector = { fd: host.fd, status: host.status, error: host.error, cancel: () => host.cancel() };
  recordConnector(rec, host.fd.id, host, k);
  return k;
}

function recordNet(rec: RecordEngine, net: NetProvider): NetProvider {
  const out: NetProvider = {
    kind: net.kind,
    listen: (addr: SocketAddress, backlog: number, name: string) => {
      const l = replayRecordIoCall(rec, 'listen', [addr, backlog, name], () => net.listen(addr, backlog, name),
        (r) => ({ fd: r.fd.id, status: r.status, error: r.error, local: r.local }));
      return mirrorListener(rec, l);
    },
    connect: (addr: SocketAddress, name: string) => {
      const c = replayRecordIoCall(rec, 'connect', [addr, name], () => net.connect(addr, name),
        (r) => ({ fd: r.fd.id, status: r.status, error: r.error }));
      return mirrorConnector(rec, c);
    },
    connInfo: (id: number) => replayRecordIoCall(rec, 'connInfo', [id], () => net.connInfo(id)),
    setNodelay: (id: number, on: boolean) => net.setNodelay(id, on),
  };
  if (net.connectSync) {
    const sync = net.connectSync.bind(net);
    out.connectSync = (addr, name) => {
      const r = replayRecordIoCall(rec, 'connectSync', [addr, name], () => sync(addr, name),
        (x) => (x.ok ? { ok: true, fd: x.conn.id } : { ok: false, error: x.error }));
      if (r.ok) recordWrapFd(rec, r.conn);
      return r;
    };
  }
  return out;
}

function recordStdio(rec: RecordEngine, stdio: StdioProvider): StdioProvider {
  return {
    open: (opts) => {
      const onSignal = opts.onSignal;
      const wrapped = {
        ...opts,
        onSignal: (sig: 'SIGINT' | 'SIGQUIT') => {
          replayRecordEvent(rec, { k: 'stdio-signal', signal: sig });
          onSignal(sig);
        },
      };
      const r = replayRecordIoCall(rec, 'stdio.open', [{ signal: opts.signal }], () => stdio.open(wrapped),
        (x) => (x.ok ? { ok: true, in: x.ends.in.id, out: x.ends.out.id } : { ok: false, error: x.error }));
      if (r.ok) {
        recordWrapFd(rec, r.ends.in);
        recordWrapFd(rec, r.ends.out);
      }
      return r;
    },
  };
}

/** Wrap the host I/O of a live machine for recording. */
export function replayRecordIo(rec: RecordEngine, io: ChardevIo): ChardevIo {
  const wrapFile = (r: FileOpenResult): FileOpenResult => {
    if (r.ok) recordWrapFd(rec, r.fd);
    return r;
  };
  return {
    kind: io.kind,
    net: recordNet(rec, io.net),
    stdio: recordStdio(rec, io.stdio),
    files: {
      openOut: (path, append) => wrapFile(replayRecordIoCall(rec, 'files.openOut', [path, append], () => io.files.openOut(path, append), fileResult)),
      openIn: (path) => wrapFile(replayRecordIoCall(rec, 'files.openIn', [path], () => io.files.openIn(path), fileResult)),
    },
  };
}

