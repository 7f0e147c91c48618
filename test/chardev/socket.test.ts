// Socket chardev behaviour on the in-memory network (deterministic, virtual time): filenames,
// OPENED/CLOSED on every connect/disconnect, one client at a time with the next waiting in the
// backlog, hang-up after pending data, writes while disconnected (EIO), slow readers (short
// writes, EAGAIN, G_IO_OUT watch), a peer closing mid-write, read flow control with the HUP
// source, nodelay, bind conflicts, wait=on, unix sockets, and the tcp_chr_read trace chain.

import { describe, expect, it } from 'vitest';
import {
  type ChardevSocket, memoryPeerBytes, memoryPeerClose, memoryPeerConnect, memoryPeerRead,
  memoryPeerSend, memoryPeerText, chardevMemoryIo, qemuChardevNew, sockState,
} from '../../chardev/index.ts';
import {
  EAGAIN, EIO, charState, qemuChrFeAddWatch, qemuChrFeWrite, qemuChrFeWriteAll,
} from '../../core/char/index.ts';
import { G_IO_OUT, type LoopMachine } from '../../core/loop/index.ts';
import {
  bytes, spin, spinUntil, testFrontendAttach, testFrontendSetCanRead, testFrontendText, testMachine,
} from '../support/chardev-frontend.ts';

const common = { logfile: null, logappend: false };
const inet = (port: string, host = '127.0.0.1') => ({ type: 'inet' as const, host, port });

function server(m: LoopMachine, sock: Partial<ChardevSocket> = {}, id = 's0') {
  const r = qemuChardevNew(m, id, { type: 'socket', common, sock: { addr: inet('4444'), server: true, wait: false, ...sock } });
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

function connect(m: LoopMachine, addr = '127.0.0.1:4444', atNs?: number) {
  const r = memoryPeerConnect(m, addr, atNs === undefined ? {} : { atNs });
  if (!r.ok) throw new Error(r.error);
  return r.peer;
}

describe('socket server on the in-memory network', () => {
  it('shows the disconnected and connected filenames and sends OPENED/CLOSED on every connection', () => {
    const m = testMachine();
    const chr = server(m);
    const fe = testFrontendAttach(chr);
    expect(chr.filename).toBe('disconnected:tcp:127.0.0.1:4444,server=on');
    const p1 = connect(m);
    spinUntil(m, () => chr.beOpen, 'first connection');
    expect(chr.filename).toBe('tcp:127.0.0.1:4444,server=on <-> 127.0.0.1:40000');
    memoryPeerSend(p1, 'abc');
    spinUntil(m, () => fe.received.length === 3, 'data');
    memoryPeerClose(p1);
    spinUntil(m, () => !chr.beOpen, 'disconnect');
    expect(chr.filename).toBe('disconnected:tcp:127.0.0.1:4444,server=on');
    expect(p1.kernelClosed).toBe(true);
    const p2 = connect(m);
    spinUntil(m, () => chr.beOpen, 'second connection');
    expect(qemuChrFeWrite(fe.be, bytes('hi'))).toBe(2);
    expect(memoryPeerText(p2)).toBe('hi');
    expect(fe.log).toEqual(['OPENED', 'read:3', 'CLOSED', 'OPENED']);
  });

  it('holds a second client in the backlog until the first leaves, keeping its early bytes', () => {
    const m = testMachine();
    const chr = server(m);
    const fe = testFrontendAttach(chr);
    const p1 = connect(m);
    spinUntil(m, () => chr.beOpen, 'first');
    const p2 = connect(m);
    memoryPeerSend(p2, 'early');
    spin(m, 20);
    expect(fe.events).toEqual(['OPENED']);
    expect(fe.received.length).toBe(0);
    memoryPeerSend(p1, 'one');
    memoryPeerClose(p1);
    spinUntil(m, () => fe.events.length === 3, 'second accepted');
    spinUntil(m, () => fe.received.length === 8, 'early bytes');
    expect(fe.events).toEqual(['OPENED', 'CLOSED', 'OPENED']);
    expect(testFrontendText(fe)).toBe('oneearly');
    qemuChrFeWrite(fe.be, bytes('to2'));
    expect(memoryPeerText(p2)).toBe('to2');
    expect(memoryPeerBytes(p1).length).toBe(0);
  });

  it('reads all pending data before acting on a hang-up, even one byte per iteration', () => {
    const m = testMachine();
    const chr = server(m);
    const fe = testFrontendAttach(chr, 'fe', 1);
    const p = connect(m);
    spinUntil(m, () => chr.beOpen, 'connect');
    memoryPeerSend(p, 'last words');
    memoryPeerClose(p);
    spinUntil(m, () => !chr.beOpen, 'disconnect');
    expect(testFrontendText(fe)).toBe('last words');
    expect(fe.reads.every((n) => n === 1)).toBe(true);
    expect(fe.log.at(-1)).toBe('CLOSED');
  });

  it('notices a hang-up through the HUP source while the frontend cannot read', () => {
    const m = testMachine();
    const chr = server(m);
    const fe = testFrontendAttach(chr, 'fe', 0);
    const p = connect(m);
    spinUntil(m, () => chr.beOpen, 'connect');
    memoryPeerClose(p);
    spinUntil(m, () => !chr.beOpen, 'disconnect without reading');
    expect(fe.events).toEqual(['OPENED', 'CLOSED']);
  });

  it('keeps unread data (and the connection) while the frontend cannot read', () => {
    const m = testMachine();
    const chr = server(m);
    const fe = testFrontendAttach(chr, 'fe', 0);
    const p = connect(m);
    spinUntil(m, () => chr.beOpen, 'connect');
    memoryPeerSend(p, 'kept');
    memoryPeerClose(p);
    spin(m, 50);
    expect(chr.beOpen).toBe(true);
    testFrontendSetCanRead(fe, 100);
    spinUntil(m, () => !chr.beOpen, 'disconnect after reading');
    expect(testFrontendText(fe)).toBe('kept');
  });

  it('drops writes while disconnected: -1 with EIO', () => {
    const m = testMachine();
    const chr = server(m);
    const fe = testFrontendAttach(chr);
    expect(qemuChrFeWrite(fe.be, bytes('lost'))).toBe(-1);
    expect(chr.errno).toBe(EIO);
  });

  it('writes short to a slow reader, then EAGAIN, and a G_IO_OUT watch resumes when it reads', () => {
    const m = testMachine();
    const chr = server(m);
    const fe = testFrontendAttach(chr);
    const r = memoryPeerConnect(m, '127.0.0.1:4444', { windowBytes: 10 });
    if (!r.ok) throw new Error(r.error);
    const p = r.peer;
    spinUntil(m, () => chr.beOpen, 'connect');
    expect(qemuChrFeWrite(fe.be, bytes('0123456789abcdef'))).toBe(10);
    expect(qemuChrFeWrite(fe.be, bytes('abcdef'))).toBe(-1);
    expect(chr.errno).toBe(EAGAIN);
    let fired = 0;
    const tag = qemuChrFeAddWatch(fe.be, G_IO_OUT, () => {
      fired++;
      return false;
    });
    expect(tag).toBeGreaterThan(0);
    spin(m, 5);
    expect(fired).toBe(0);
    memoryPeerRead(p, m.clocks.simNs + 1_000_000);
    spinUntil(m, () => fired === 1, 'writable again');
    expect(m.clocks.simNs).toBe(1_000_000);
    expect(qemuChrFeWriteAll(fe.be, bytes('abcdef'))).toBe(6);
    expect(memoryPeerText(p)).toBe('0123456789abcdef');
  });

  it('handles a peer that closes mid-write: disconnect at once when the frontend does not read', () => {
    const m = testMachine();
    const chr = server(m);
    const fe = testFrontendAttach(chr, 'fe', 0);
    const p = connect(m);
    spinUntil(m, () => chr.beOpen, 'connect');
    expect(qemuChrFeWrite(fe.be, bytes('part 1'))).toBe(6);
    memoryPeerClose(p);
    spin(m, 1);
    // The hang-up is visible to a write before any read: the send fails with an error.
    expect(qemuChrFeWrite(fe.be, bytes('part 2'))).toBe(-1);
    expect(chr.beOpen).toBe(false);
    expect(fe.events).toEqual(['OPENED', 'CLOSED']);
    expect(memoryPeerText(p)).toBe('part 1');
  });

  it('lets the read side finish when a write fails while the frontend still reads', () => {
    const m = testMachine();
    const chr = server(m);
    const fe = testFrontendAttach(chr, 'fe', 1);
    const p = connect(m);
    spinUntil(m, () => chr.beOpen, 'connect');
    memoryPeerSend(p, 'xyz');
    memoryPeerClose(p);
    spin(m, 1);
    expect(qemuChrFeWrite(fe.be, bytes('late'))).toBe(-1);
    expect(chr.beOpen).toBe(true);
    spinUntil(m, () => !chr.beOpen, 'EOF');
    expect(testFrontendText(fe)).toBe('xyz');
  });

  it('turns TCP_NODELAY on by default (QEMU leaves it off) and off with nodelay=off', () => {
    const m = testMachine();
    const a = server(m, {}, 'a');
    const b = server(m, { addr: inet('4445'), nodelay: false }, 'b');
    testFrontendAttach(a);
    testFrontendAttach(b);
    connect(m, '127.0.0.1:4444');
    connect(m, '127.0.0.1:4445');
    spinUntil(m, () => a.beOpen && b.beOpen, 'both connected');
    const nd = chardevMemoryIo(m).net.nodelay;
    expect(nd.get(sockState(a).connFd!)).toBe(true);
    expect(nd.get(sockState(b).connFd!)).toBe(false);
  });

  it('refuses a second listener on the same port with QEMU\'s message', () => {
    const m = testMachine();
    server(m);
    const r = qemuChardevNew(m, 's1', { type: 'socket', common, sock: { addr: inet('4444', ''), server: true, wait: false } });
    expect(r).toEqual({ ok: false, error: 'Failed to find an available port: Address already in use' });
  });

  it('binds port 0 to an ephemeral port and reports wait=on as QEMU does', () => {
    const m = testMachine();
    const chr = server(m, { addr: inet('0'), wait: true });
    expect(chr.filename).toBe('disconnected:tcp:127.0.0.1:40000,server=on');
    expect(charState(m).reports).toEqual([
      { level: 'info', msg: 'QEMU waiting for connection on: disconnected:tcp:127.0.0.1:40000,server=on' },
    ]);
  });

  it('serves unix sockets with the unix filename forms', () => {
    const m = testMachine();
    const r = qemuChardevNew(m, 'u0', {
      type: 'socket', common, sock: { addr: { type: 'unix', path: '/tmp/detvm.sock', abstract: false, tight: true }, server: true, wait: false },
    });
    if (!r.ok) throw new Error(r.error);
    const chr = r.value;
    testFrontendAttach(chr);
    expect(chr.filename).toBe('disconnected:unix:/tmp/detvm.sock,server=on');
    connect(m, 'unix:/tmp/detvm.sock');
    spinUntil(m, () => chr.beOpen, 'connect');
    expect(chr.filename).toBe('unix:/tmp/detvm.sock,server=on');
  });

  it('traces the read as g_main_context_dispatch > tcp_chr_read with the frontend below', () => {
    const m = testMachine();
    const chr = server(m);
    testFrontendAttach(chr);
    const p = connect(m);
    spinUntil(m, () => chr.beOpen, 'connect');
    memoryPeerSend(p, 'q');
    const stacks: string[] = [];
    const stack: string[] = [];
    m.trace.sink = (rec) => {
      if (rec.kind === 'enter') stack.push(rec.name);
      if (rec.kind === 'exit') stack.pop();
      if (rec.name === 'tcp_chr_read' && rec.kind === 'enter') stacks.push(stack.join(' > '));
    };
    spin(m, 2);
    expect(stacks).toEqual(['main_loop_wait > os_host_main_loop_wait > glib_pollfds_poll > g_main_context_dispatch > tcp_chr_read']);
  });
});
