// An in-test chardev with a scripted peer, standing in for the socket chardev until chardev/
// lands: a main-loop source that reads like QEMU's IOWatchPoll + tcp_chr_read (can_read asked in
// prepare, at most min(4096, can_read) bytes per dispatch), writes that fail while no client is
// connected, optional output back-pressure with G_IO_OUT watches, and OPENED/CLOSED events.

import {
  type LoopMachine, G_PRIORITY_DEFAULT, gSourceAttach, gSourceDestroy, type LoopSource, qemuNotifyEvent,
} from '../../core/loop/index.ts';
import {
  type Chardev, type ChardevDriver, type ChrWatchFn, CHR_EVENT_CLOSED, CHR_EVENT_OPENED, CHR_READ_BUF_LEN,
  chardevCreate, qemuChrBeCanWrite, qemuChrBeEvent, qemuChrBeWrite,
} from '../../core/char/index.ts';

export interface FakePeer {
  chr: Chardev;
  connected: boolean;
  /** Bytes sent by the client, not yet read by the chardev. */
  input: number[];
  /** Bytes the chardev wrote to the client, since the last take. */
  output: number[];
  /** Everything written over all connections. */
  allOutput: number[];
  /** Bytes the client accepts before writes become short (null: unlimited). */
  writeBudget: number | null;
  watches: { fn: ChrWatchFn; tag: number }[];
  nextTag: number;
  maxSize: number;
  source: LoopSource;
  reads: number;
}

function fakeDriver(peer: () => FakePeer): ChardevDriver {
  return {
    type: 'socket',
    write: (_chr, buf) => {
      const p = peer();
      if (!p.connected) return -1; // tcp_chr_write: EIO while disconnected
      let n = buf.length;
      if (p.writeBudget !== null) n = Math.min(n, p.writeBudget);
      for (let i = 0; i < n; i++) {
        p.output.push(buf[i]!);
        p.allOutput.push(buf[i]!);
      }
      if (p.writeBudget !== null) p.writeBudget -= n;
      return n;
    },
    addWatch: (_chr, _cond, fn) => {
      const p = peer();
      const tag = p.nextTag++;
      p.watches.push({ fn, tag });
      return tag;
    },
    acceptInput: () => {},
  };
}

/** Create a chardev `label` with a scripted peer on `m`'s main loop. */
export function fakePeerCreate(m: LoopMachine, label = 'compat_monitor0'): FakePeer {
  let self: FakePeer | null = null;
  const chr = chardevCreate(m, label, fakeDriver(() => self!), `disconnected:tcp:127.0.0.1:4444,server=on`);
  const p: FakePeer = {
    chr, connected: false, input: [], output: [], allOutput: [], writeBudget: null, watches: [], nextTag: 1,
    maxSize: 0, reads: 0, source: null as unknown as LoopSource,
  };
  self = p;
  p.source = gSourceAttach(m.loop.sources, `fake_chr_read:${label}`, G_PRIORITY_DEFAULT, {
    prepare: () => {
      p.maxSize = p.connected ? qemuChrBeCanWrite(chr) : 0;
      const writable = p.watches.length > 0 && (p.writeBudget === null || p.writeBudget > 0);
      return (p.maxSize > 0 && p.input.length > 0) || writable ? 0 : -1;
    },
    check: () => (p.maxSize > 0 && p.input.length > 0) || (p.watches.length > 0 && (p.writeBudget === null || p.writeBudget > 0)),
    dispatch: () => {
      if (p.watches.length > 0 && (p.writeBudget === null || p.writeBudget > 0)) {
        const ws = p.watches;
        p.watches = [];
        for (const w of ws) if (w.fn(4)) p.watches.push(w);
      }
      if (!p.connected || p.maxSize <= 0 || p.input.length === 0) return;
      const n = Math.min(CHR_READ_BUF_LEN, p.maxSize, p.input.length);
      const buf = Uint8Array.from(p.input.splice(0, n));
      p.reads++;
      qemuChrBeWrite(chr, buf);
    },
  });
  return p;
}

/** A client connects: the chardev is opened. */
export function fakePeerConnect(p: FakePeer): void {
  p.connected = true;
  p.chr.filename = 'tcp:127.0.0.1:4444,server=on <-> 127.0.0.1:50000';
  qemuChrBeEvent(p.chr, CHR_EVENT_OPENED);
}

/** The client hangs up; unread input is dropped. */
export function fakePeerDisconnect(p: FakePeer): void {
  p.connected = false;
  p.input = [];
  p.chr.filename = 'disconnected:tcp:127.0.0.1:4444,server=on';
  qemuChrBeEvent(p.chr, CHR_EVENT_CLOSED);
}

/** The client sends bytes (a string is taken as bytes, char code per byte). */
export function fakePeerSend(p: FakePeer, data: Uint8Array | string): void {
  if (typeof data === 'string') for (let i = 0; i < data.length; i++) p.input.push(data.charCodeAt(i) & 0xff);
  else for (const b of data) p.input.push(b);
  qemuNotifyEvent(p.chr.m);
}

/** Take what the client received since the last take, as a byte string. */
export function fakePeerTake(p: FakePeer): string {
  const s = String.fromCharCode(...p.output.slice(0, 65536));
  const rest = p.output.length > 65536 ? takeRest(p.output.slice(65536)) : '';
  p.output = [];
  return s + rest;
}

function takeRest(a: number[]): string {
  let s = '';
  for (let i = 0; i < a.length; i += 65536) s += String.fromCharCode(...a.slice(i, i + 65536));
  return s;
}

/** Remove the peer's source from the loop. */
export function fakePeerDestroy(p: FakePeer): void {
  gSourceDestroy(p.chr.m.loop.sources, p.source);
}
