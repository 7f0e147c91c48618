// Socket chardevs on real sockets (127.0.0.1, ephemeral ports, unix sockets in a temp dir),
// driven by the async live driver (test/support/chardev-live.ts): no sleeps, every wait is on a
// socket event. Connect, disconnect, reconnect; a second client waiting for the first to leave;
// a slow reader; 10 MB each way byte-exact; a peer that closes mid-write; a flooding client
// throttled with bounded memory; telnet; client mode with reconnect; wait=on; port in use.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  qemuChardevOptsList, qemuChardevOptsParse, qemuChrNewFromOptsLive, sockIo,
} from '../../chardev/index.ts';
import {
  type Chardev, EAGAIN, charBackendCreate, charState, chrReportFormat, qemuChrFeAddWatch, qemuChrFeInit,
  qemuChrFeSetHandlers, qemuChrFeWrite,
} from '../../core/char/index.ts';
import { G_IO_HUP, G_IO_OUT } from '../../core/loop/index.ts';
import {
  type TestFrontend, testFrontendAttach, testFrontendSetCanRead,
} from '../support/chardev-frontend.ts';
import {
  type LiveMachine, collect, listenPort, liveMachineCreate, liveRunUntil, tcpConnect, unixConnect,
} from '../support/chardev-live.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'detvm-live-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const live: LiveMachine[] = [];
const clients: net.Socket[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
  for (const lm of live.splice(0)) lm.close();
});

function machine(opts: Parameters<typeof liveMachineCreate>[0] = {}): LiveMachine {
  const lm = liveMachineCreate(opts);
  live.push(lm);
  return lm;
}

async function create(lm: LiveMachine, arg: string): Promise<Chardev> {
  const p = qemuChardevOptsParse(qemuChardevOptsList(), arg);
  if (!p.ok) throw new Error(p.error);
  const r = await qemuChrNewFromOptsLive(lm.io, lm.m, p.value);
  if (!r.ok) throw new Error(r.error);
  return r.chr;
}

async function client(port: number): Promise<net.Socket> {
  const c = await tcpConnect(port);
  clients.push(c);
  return c;
}

/** Deterministic pseudo-random bytes (an LCG; no Math.random in detvm). */
function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** Write `data` through the frontend with back-pressure: short writes arm a G_IO_OUT watch. */
function pump(fe: TestFrontend, data: Uint8Array): { sent: () => number; error: () => boolean } {
  let off = 0;
  let failed = false;
  const step = (): void => {
    while (off < data.length) {
      const n = qemuChrFeWrite(fe.be, data.subarray(off, off + 65536));
      if (n > 0) {
        off += n;
        continue;
      }
      if (n < 0 && fe.be.chr?.errno !== EAGAIN) failed = true;
      break;
    }
    if (off < data.length && !failed) {
      qemuChrFeAddWatch(fe.be, G_IO_OUT | G_IO_HUP, () => {
        step();
        return false;
      });
    }
  };
  step();
  return { sent: () => off, error: () => failed };
}

/**
 * Bytes that loopback TCP cannot all absorb while the reader is paused: the most the kernel's
 * send and receive buffers may grow to (tcp_wmem, tcp_rmem maxima; autotuning reaches them),
 * plus a margin. A fixed 4 MiB made the writer's block depend on the host's memory pressure.
 */
function moreThanLoopbackHolds(): number {
  const max = (f: string): number => {
    try {
      return Number(fs.readFileSync(f, 'utf8').trim().split(/\s+/)[2]) || 0;
    } catch {
      return 0;
    }
  };
  return Math.max(4 << 20, max('/proc/sys/net/ipv4/tcp_wmem') + max('/proc/sys/net/ipv4/tcp_rmem') + (8 << 20));
}

describe('socket chardev on real sockets', () => {
  it('connects, exchanges bytes, disconnects and accepts the next client, with QEMU filenames', async () => {
    const lm = machine();
    const chr = await create(lm, 'socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off');
    const port = listenPort(chr.filename);
    expect(chr.filename).toBe(`disconnected:tcp:127.0.0.1:${port},server=on`);
    const fe = testFrontendAttach(chr);
    const c1 = await client(port);
    const got = collect(lm, c1);
    await liveRunUntil(lm, () => chr.beOpen, 'connection');
    expect(chr.filename).toBe(`tcp:127.0.0.1:${port},server=on <-> 127.0.0.1:${c1.localPort}`);
    c1.write('hello');
    await liveRunUntil(lm, () => fe.received.length === 5, 'hello');
    qemuChrFeWrite(fe.be, new TextEncoder().encode('world'));
    await liveRunUntil(lm, () => got.bytes().length === 5, 'world');
    expect(got.bytes().toString()).toBe('world');
    c1.end();
    await liveRunUntil(lm, () => !chr.beOpen, 'disconnect');
    expect(chr.filename).toBe(`disconnected:tcp:127.0.0.1:${port},server=on`);
    await client(port);
    await liveRunUntil(lm, () => chr.beOpen, 'second connection');
    expect(fe.events).toEqual(['OPENED', 'CLOSED', 'OPENED']);
  });

  it('answers a peer that shut down its sending side (half-open, as QEMU: socat at the end of its input)', async () => {
    const lm = machine();
    const chr = await create(lm, 'socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off');
    // A frontend that reads a byte per iteration, as a monitor does, and answers once the whole
    // line is in: iterations after the peer's FIN arrived.
    const be = charBackendCreate();
    const err = qemuChrFeInit(be, chr);
    if (err) throw new Error(err.desc);
    let line: number[] = [];
    let canRead = 0;
    qemuChrFeSetHandlers(be, () => canRead, (_o, buf) => {
      line.push(...buf);
      if (line.length === 5) {
        qemuChrFeWrite(be, Uint8Array.from(line, (b) => b ^ 0x20));
        line = [];
      }
    }, null, null, null);
    const c = await client(listenPort(chr.filename));
    const got = collect(lm, c);
    let ended = false;
    c.on('end', () => {
      ended = true;
    });
    c.end('hello'); // the last bytes, then FIN
    // The frontend starts reading only once the host saw the FIN (QEMU reads what came before
    // it all the same, and its socket stays writable).
    await liveRunUntil(lm, () => sockIo(chr).conn?.hup === true, 'the FIN');
    canRead = 1;
    await liveRunUntil(lm, () => ended, 'the server closing after its answers');
    expect(got.bytes().toString()).toBe('HELLO');
    expect(chr.beOpen).toBe(false);
  });

  it('holds a second client until the first leaves, keeping the bytes it sent meanwhile', async () => {
    const lm = machine();
    const chr = await create(lm, 'socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off');
    const port = listenPort(chr.filename);
    const fe = testFrontendAttach(chr);
    const c1 = await client(port);
    await liveRunUntil(lm, () => chr.beOpen, 'first');
    const c2 = await client(port);
    c2.write('early');
    const lfd = sockIo(chr).listener!.fd;
    await liveRunUntil(lm, () => lfd.accepts.length === 1 && lm.m.fdt.fds.get(lfd.accepts[0]!)!.inboundBytes === 5, 'held bytes');
    expect(fe.events).toEqual(['OPENED']);
    expect(fe.received.length).toBe(0);
    c1.end();
    await liveRunUntil(lm, () => fe.received.length === 5, 'second served');
    expect(fe.events).toEqual(['OPENED', 'CLOSED', 'OPENED']);
    expect(String.fromCharCode(...fe.received)).toBe('early');
  });

  it('waits for a slow reader through G_IO_OUT and delivers every byte', async () => {
    const lm = machine({ net: { writeHighBytes: 64 * 1024 } });
    const chr = await create(lm, 'socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off');
    const fe = testFrontendAttach(chr);
    const c = await client(listenPort(chr.filename));
    c.pause();
    const got = collect(lm, c);
    await liveRunUntil(lm, () => chr.beOpen, 'connect');
    const data = pattern(moreThanLoopbackHolds(), 7);
    const p = pump(fe, data);
    const conn = sockIo(chr).conn!;
    await liveRunUntil(lm, () => !conn.writable, 'writer blocked');
    expect(p.sent()).toBeLessThan(data.length);
    c.resume();
    await liveRunUntil(lm, () => got.bytes().length === data.length, 'all bytes');
    expect(Buffer.compare(got.bytes(), Buffer.from(data))).toBe(0);
  });

  it('moves 10 MB each way, byte-exact', async () => {
    const lm = machine();
    const chr = await create(lm, 'socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off');
    const fe = testFrontendAttach(chr, 'fe', 4096);
    const c = await client(listenPort(chr.filename));
    const got = collect(lm, c);
    await liveRunUntil(lm, () => chr.beOpen, 'connect');
    const up = pattern(10 << 20, 1);
    const down = pattern(10 << 20, 2);
    c.write(up);
    const p = pump(fe, down);
    await liveRunUntil(lm, () => fe.received.length === up.length && got.bytes().length === down.length, '10 MB each way');
    expect(p.error()).toBe(false);
    expect(Buffer.compare(Buffer.from(Uint8Array.from(fe.received)), Buffer.from(up))).toBe(0);
    expect(Buffer.compare(got.bytes(), Buffer.from(down))).toBe(0);
  }, 120_000);

  it('disconnects when the peer closes in the middle of a large write', async () => {
    const lm = machine({ net: { writeHighBytes: 64 * 1024 } });
    const chr = await create(lm, 'socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off');
    const fe = testFrontendAttach(chr, 'fe', 0);
    const c = await client(listenPort(chr.filename));
    await liveRunUntil(lm, () => chr.beOpen, 'connect');
    let seen = 0;
    c.on('data', (d: Buffer) => {
      seen += d.length;
      if (seen > 100_000) c.destroy();
    });
    const p = pump(fe, pattern(8 << 20, 3));
    await liveRunUntil(lm, () => !chr.beOpen, 'disconnect');
    expect(fe.events).toEqual(['OPENED', 'CLOSED']);
    expect(p.sent()).toBeLessThan(8 << 20);
  });

  it('throttles a flooding client: the host socket pauses, memory stays bounded, nothing is lost', async () => {
    const high = 64 * 1024;
    const lm = machine({ net: { pauseHighBytes: high, resumeLowBytes: 16 * 1024 } });
    const chr = await create(lm, 'socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off');
    const fe = testFrontendAttach(chr, 'fe', 0);
    const c = await client(listenPort(chr.filename));
    await liveRunUntil(lm, () => chr.beOpen, 'connect');
    const flood = pattern(8 << 20, 4);
    c.write(flood);
    const stats = lm.io.net.stats;
    await liveRunUntil(lm, () => stats.pauses > 0, 'host socket paused');
    const conn = sockIo(chr).conn!;
    expect(conn.inboundBytes).toBeLessThanOrEqual(high + 64 * 1024);
    testFrontendSetCanRead(fe, 4096);
    await liveRunUntil(lm, () => fe.received.length === flood.length, 'flood delivered');
    expect(stats.resumes).toBeGreaterThan(0);
    expect(stats.maxHeldBytes).toBeLessThanOrEqual(high + 64 * 1024);
    expect(Buffer.compare(Buffer.from(Uint8Array.from(fe.received)), Buffer.from(flood))).toBe(0);
  }, 120_000);

  it('negotiates telnet first and turns IAC BREAK into a BREAK event', async () => {
    const lm = machine();
    const chr = await create(lm, 'socket,id=t0,host=127.0.0.1,port=0,server=on,wait=off,telnet=on');
    const fe = testFrontendAttach(chr);
    const c = await client(listenPort(chr.filename));
    const got = collect(lm, c);
    await liveRunUntil(lm, () => chr.beOpen, 'negotiated');
    await liveRunUntil(lm, () => got.bytes().length === 12, 'negotiation bytes');
    expect([...got.bytes()]).toEqual([0xff, 0xfb, 0x01, 0xff, 0xfb, 0x03, 0xff, 0xfb, 0x00, 0xff, 0xfd, 0x00]);
    c.write(Buffer.from([0x61, 0xff, 0xf3, 0x62]));
    await liveRunUntil(lm, () => fe.received.length === 2, 'filtered input');
    expect(fe.events).toEqual(['OPENED', 'BREAK']);
  });

  it('serves a unix socket', async () => {
    const lm = machine();
    const sock = path.join(tmp, 'mon.sock');
    const chr = await create(lm, `socket,id=u0,path=${sock},server=on,wait=off`);
    expect(chr.filename).toBe(`disconnected:unix:${sock},server=on`);
    const fe = testFrontendAttach(chr);
    const c = await unixConnect(sock);
    clients.push(c);
    await liveRunUntil(lm, () => chr.beOpen, 'connect');
    expect(chr.filename).toBe(`unix:${sock},server=on`);
    c.write('u');
    await liveRunUntil(lm, () => fe.received.length === 1, 'byte');
  });

  it('blocks start-up on wait=on until the first client, printing QEMU\'s line', async () => {
    const lm = machine();
    const lines: string[] = [];
    charState(lm.m).reportSink = (r) => {
      lines.push(chrReportFormat(r, 'detvm', null));
      const port = /:(\d+),server=on/.exec(r.msg);
      if (port) void client(Number(port[1]));
    };
    const chr = await create(lm, 'socket,id=w0,host=127.0.0.1,port=0,server=on,wait=on');
    expect(chr.beOpen).toBe(true);
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(/^detvm: info: QEMU waiting for connection on: disconnected:tcp:127\.0\.0\.1:\d+,server=on\n$/);
  });

  it('fails start-up when the port is in use, naming host and port through the option', async () => {
    const lm = machine();
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    const arg = `socket,id=s0,host=127.0.0.1,port=${port},server=on,wait=off`;
    const p = qemuChardevOptsParse(qemuChardevOptsList(), arg);
    if (!p.ok) throw new Error(p.error);
    const r = await qemuChrNewFromOptsLive(lm.io, lm.m, p.value);
    blocker.close();
    expect(r).toEqual({ ok: false, error: 'Failed to find an available port: Address already in use' });
    const line = chrReportFormat({ level: 'error', msg: r.ok ? '' : r.error }, 'detvm', `-chardev ${arg}`);
    expect(line).toBe(`detvm: -chardev ${arg}: Failed to find an available port: Address already in use\n`);
    expect(charState(lm.m).chardevs.size).toBe(0);
  });

  it('connects as a client, fails when refused, and reconnects every reconnect seconds', async () => {
    const lm = machine();
    const accepted: net.Socket[] = [];
    const srv = net.createServer((s) => {
      accepted.push(s);
      s.write('srv');
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    const port = (srv.address() as net.AddressInfo).port;
    const chr = await create(lm, `socket,id=c0,host=127.0.0.1,port=${port}`);
    expect(chr.beOpen).toBe(true);
    const fe = testFrontendAttach(chr);
    await liveRunUntil(lm, () => fe.received.length === 3, 'server greeting');
    for (const s of accepted) s.destroy();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
    await liveRunUntil(lm, () => !chr.beOpen, 'server gone');
    const refused = qemuChardevOptsParse(qemuChardevOptsList(), `socket,id=c1,host=127.0.0.1,port=${port}`);
    if (!refused.ok) throw new Error(refused.error);
    expect(await qemuChrNewFromOptsLive(lm.io, lm.m, refused.value)).toEqual({
      ok: false, error: `Failed to connect to '127.0.0.1:${port}': Connection refused`,
    });
    const rc = await create(lm, `socket,id=c2,host=127.0.0.1,port=${port},reconnect=1`);
    const fe2 = testFrontendAttach(rc);
    await liveRunUntil(lm, () => charState(lm.m).reports.length === 1, 'first failure reported');
    expect(charState(lm.m).reports[0]!.msg).toBe(
      `Unable to connect character device c2: Failed to connect to '127.0.0.1:${port}': Connection refused`,
    );
    const srv2 = net.createServer((s) => clients.push(s));
    await new Promise<void>((resolve) => srv2.listen(port, '127.0.0.1', resolve));
    await liveRunUntil(lm, () => rc.beOpen, 'reconnected');
    expect(fe2.events).toEqual(['OPENED']);
    srv2.close();
  });
});
