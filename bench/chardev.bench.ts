// Chardev throughput: 8 MB through a socket chardev on the in-memory network (virtual mode,
// peer -> frontend, 4096-byte reads) and 8 MB each way over a real 127.0.0.1 socket (live
// mode, back-pressured writes). Wall time only measures detvm; nothing here is deterministic.

import * as net from 'node:net';
import {
  memoryPeerConnect, memoryPeerSend, qemuChardevNew, qemuChardevOptsList, qemuChardevOptsParse,
  qemuChrNewFromOptsLive,
} from '../chardev/index.ts';
import { EAGAIN, qemuChrFeAddWatch, qemuChrFeWrite } from '../core/char/index.ts';
import { G_IO_HUP, G_IO_OUT, loopStep } from '../core/loop/index.ts';
import { testFrontendAttach, testMachine } from '../test/support/chardev-frontend.ts';
import {
  listenPort, liveMachineCreate, liveRunUntil, tcpConnect,
} from '../test/support/chardev-live.ts';
import { type BenchRow, timeMs } from './harness.ts';

const MB = 1 << 20;

async function memorySocket(): Promise<number> {
  const m = testMachine();
  m.trace.level = 0;
  const r = qemuChardevNew(m, 's0', {
    type: 'socket', common: { logfile: null, logappend: false },
    sock: { addr: { type: 'inet', host: '127.0.0.1', port: '4444' }, server: true, wait: false },
  });
  if (!r.ok) throw new Error(r.error);
  const fe = testFrontendAttach(r.value, 'fe', 4096);
  let got = 0;
  fe.be.chrRead = (_o, buf) => {
    got += buf.length;
  };
  const p = memoryPeerConnect(m, '127.0.0.1:4444');
  if (!p.ok) throw new Error(p.error);
  for (let i = 0; i < 8; i++) memoryPeerSend(p.peer, new Uint8Array(MB));
  return timeMs(() => {
    for (let i = 0; got < 8 * MB && i < 10_000_000; i++) loopStep(m);
  });
}

async function realSocket(): Promise<number> {
  const lm = liveMachineCreate();
  const opts = qemuChardevOptsParse(qemuChardevOptsList(), 'socket,id=s0,host=127.0.0.1,port=0,server=on,wait=off');
  if (!opts.ok) throw new Error(opts.error);
  const r = await qemuChrNewFromOptsLive(lm.io, lm.m, opts.value);
  if (!r.ok) throw new Error(r.error);
  const chr = r.chr;
  const fe = testFrontendAttach(chr, 'fe', 4096);
  let got = 0;
  fe.be.chrRead = (_o, buf) => {
    got += buf.length;
  };
  const c: net.Socket = await tcpConnect(listenPort(chr.filename));
  let back = 0;
  c.on('data', (d: Buffer) => {
    back += d.length;
    lm.io.wake();
  });
  await liveRunUntil(lm, () => chr.beOpen, 'connect');
  const down = new Uint8Array(8 * MB);
  let off = 0;
  const pump = (): void => {
    while (off < down.length) {
      const n = qemuChrFeWrite(fe.be, down.subarray(off, off + 65536));
      if (n <= 0) {
        if (n < 0 && chr.errno !== EAGAIN) return;
        qemuChrFeAddWatch(fe.be, G_IO_OUT | G_IO_HUP, () => (pump(), false));
        return;
      }
      off += n;
    }
  };
  const ms = await timeMs(async () => {
    c.write(new Uint8Array(8 * MB));
    pump();
    await liveRunUntil(lm, () => got === 8 * MB && back === 8 * MB, '8 MB each way');
  });
  c.destroy();
  lm.close();
  return ms;
}

export async function run(): Promise<BenchRow[]> {
  const mem = await memorySocket();
  const real = await realSocket();
  return [
    { name: 'in-memory socket, 8 MB peer -> frontend', value: (8 / mem) * 1000, unit: 'MB/s', target: '>= 20 MB/s', pass: (8 / mem) * 1000 >= 20 },
    { name: 'real socket, 8 MB each way', value: (16 / real) * 1000, unit: 'MB/s', target: '>= 20 MB/s', pass: (16 / real) * 1000 >= 20 },
  ];
}
