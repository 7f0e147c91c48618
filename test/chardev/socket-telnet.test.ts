// Telnet on a socket server (negotiation bytes before OPENED, the IAC filter and its quirks,
// state kept across reads) and client sockets (synchronous connect errors, reconnect=N on a
// REALTIME timer with one error report, reconnect after the server goes away). Method: in-memory
// peers at chosen virtual times; exact bytes, events and times.

import { describe, expect, it } from 'vitest';
import {
  memoryPeerClose, memoryPeerConnect, memoryPeerListen, memoryPeerSend, memoryPeerText,
  qemuChardevNew, sockIo, tcpChrProcessIacBytes,
} from '../../chardev/index.ts';
import { charState } from '../../core/char/index.ts';
import {
  type LoopMachine, QEMU_TIMER_ATTR_EXTERNAL, runFor, timerExpireTimeNs,
} from '../../core/loop/index.ts';
import {
  binary, spinUntil, testFrontendAttach, testFrontendText, testMachine,
} from '../support/chardev-frontend.ts';

const common = { logfile: null, logappend: false };
const SEC = 1_000_000_000;

function telnetServer(m: LoopMachine) {
  const r = qemuChardevNew(m, 't0', {
    type: 'socket', common, sock: { addr: { type: 'inet', host: '127.0.0.1', port: '4444' }, server: true, wait: false, telnet: true },
  });
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

describe('telnet server', () => {
  it('sends the 12 negotiation bytes, then OPENED, before anything the frontend writes', () => {
    const m = testMachine();
    const chr = telnetServer(m);
    const fe = testFrontendAttach(chr);
    expect(chr.filename).toBe('disconnected:telnet:127.0.0.1:4444,server=on');
    const r = memoryPeerConnect(m, '127.0.0.1:4444');
    if (!r.ok) throw new Error(r.error);
    spinUntil(m, () => chr.beOpen, 'negotiated');
    expect(memoryPeerText(r.peer)).toBe('\xff\xfb\x01\xff\xfb\x03\xff\xfb\x00\xff\xfd\x00');
    expect(fe.events).toEqual(['OPENED']);
    expect(chr.filename).toBe('telnet:127.0.0.1:4444,server=on <-> 127.0.0.1:40000');
  });

  const cases: [string, string, string, string[]][] = [
    ['IAC IAC is one literal 0xFF', 'a\xff\xffb', 'a\xffb', []],
    ['IAC BREAK raises BREAK', 'a\xff\xf3b', 'ab', ['BREAK']],
    ['option triples are dropped', '\xff\xfb\x01x\xff\xfd\x03y', 'xy', []],
    ['IAC NOP swallows the next byte (QEMU quirk)', '\xff\xf1quit', 'uit', []],
    ['\\r\\0 stays two bytes', 'q\r\0', 'q\r\0', []],
  ];
  for (const [what, input, output, events] of cases) {
    it(`filters input: ${what}`, () => {
      const m = testMachine();
      const chr = telnetServer(m);
      const fe = testFrontendAttach(chr);
      const r = memoryPeerConnect(m, '127.0.0.1:4444');
      if (!r.ok) throw new Error(r.error);
      spinUntil(m, () => chr.beOpen, 'negotiated');
      memoryPeerSend(r.peer, binary(input));
      spinUntil(m, () => fe.received.length >= output.length && m.fdt.fds.get(r.peer.fd.id)!.inboundBytes === 0, 'delivery');
      expect(testFrontendText(fe)).toBe(output);
      expect(fe.events.slice(1)).toEqual(events);
    });
  }

  it('keeps the filter state across reads (one byte per read)', () => {
    const m = testMachine();
    const chr = telnetServer(m);
    const fe = testFrontendAttach(chr, 'fe', 1);
    const r = memoryPeerConnect(m, '127.0.0.1:4444');
    if (!r.ok) throw new Error(r.error);
    spinUntil(m, () => chr.beOpen, 'negotiated');
    memoryPeerSend(r.peer, binary('A\xff\xfb\x01B\xff\xffC\xff\xf3D'));
    spinUntil(m, () => fe.received.length === 5, 'delivery');
    expect(testFrontendText(fe)).toBe('AB\xffCD');
    expect(fe.events).toEqual(['OPENED', 'BREAK']);
  });

  it('implements the pure filter exactly as tcp_chr_process_IAC_bytes (tn3270 keeps EOR)', () => {
    const s = { doTelnetopt: 1, isTn3270: true };
    let breaks = 0;
    // tn3270: EOR is kept as FF EF; EOR and NOP are two-byte commands (the byte after is kept).
    const out = tcpChrProcessIacBytes(s, binary('x\xff\xefy\xff\xf1zw'), () => breaks++);
    expect(String.fromCharCode(...out)).toBe('x\xff\xefyzw');
    expect(breaks).toBe(0);
  });
});

describe('socket client', () => {
  it('fails creation with QEMU\'s error when nobody listens (reconnect=0)', () => {
    const m = testMachine();
    const r = qemuChardevNew(m, 'c0', { type: 'socket', common, sock: { addr: { type: 'inet', host: '127.0.0.1', port: '6000' }, server: false } });
    expect(r).toEqual({ ok: false, error: "Failed to connect to '127.0.0.1:6000': Connection refused" });
  });

  it('retries every reconnect seconds on a REALTIME timer, reporting the failure once', () => {
    const m = testMachine();
    const r = qemuChardevNew(m, 'c0', {
      type: 'socket', common, sock: { addr: { type: 'inet', host: '127.0.0.1', port: '6000' }, server: false, reconnect: 1 },
    });
    if (!r.ok) throw new Error(r.error);
    const chr = r.value;
    const fe = testFrontendAttach(chr);
    expect(chr.filename).toBe('disconnected:tcp:127.0.0.1:6000');
    runFor(m, 2.5 * SEC);
    expect(charState(m).reports).toEqual([
      { level: 'error', msg: "Unable to connect character device c0: Failed to connect to '127.0.0.1:6000': Connection refused" },
    ]);
    const timer = sockIo(chr).reconnectTimer!;
    expect(timer.name).toBe('chardev-socket-reconnect-c0');
    expect(timer.attributes).toBe(QEMU_TIMER_ATTR_EXTERNAL);
    expect(timerExpireTimeNs(timer)).toBe(3 * SEC);
    const srv = memoryPeerListen(m, '127.0.0.1:6000');
    if (!srv.ok) throw new Error(srv.error);
    spinUntil(m, () => chr.beOpen, 'reconnected');
    expect(m.clocks.simNs).toBe(3 * SEC);
    expect(chr.filename).toBe('tcp:127.0.0.1:40000 <-> 127.0.0.1:6000');
    const peer = srv.server.peers[0]!;
    memoryPeerSend(peer, 'hello');
    spinUntil(m, () => fe.received.length === 5, 'data');
    memoryPeerClose(peer);
    spinUntil(m, () => !chr.beOpen, 'server hung up');
    const closedAt = m.clocks.simNs;
    spinUntil(m, () => chr.beOpen, 'reconnected after hang-up');
    expect(m.clocks.simNs - closedAt).toBe(1 * SEC);
    expect(fe.events).toEqual(['OPENED', 'CLOSED', 'OPENED']);
    expect(srv.server.peers.length).toBe(2);
    expect(charState(m).reports.length).toBe(1);
  });

  it('rejects server-only and client-only options as QEMU does', () => {
    const m = testMachine();
    const addr = { type: 'inet' as const, host: '127.0.0.1', port: '1' };
    expect(qemuChardevNew(m, 'a', { type: 'socket', common, sock: { addr, server: true, reconnect: 1 } })).toEqual({
      ok: false, error: "'reconnect' option is incompatible with socket in server listen mode",
    });
    expect(qemuChardevNew(m, 'b', { type: 'socket', common, sock: { addr, server: false, wait: true } })).toEqual({
      ok: false, error: "'wait' option is incompatible with socket in client connect mode",
    });
    expect(qemuChardevNew(m, 'c', { type: 'socket', common, sock: { addr, server: false, websocket: true } })).toEqual({
      ok: false, error: 'Websocket client is not implemented',
    });
  });
});
