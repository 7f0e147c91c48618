// The floor under migration over loopback TCP: how long Node itself takes to move N MiB from one
// process to another, with no emulator on either side. The sender writes views of a filled
// buffer as fast as Node takes them; the receiver copies every byte into an N MiB array (a
// destination must put the bytes somewhere). Two receivers:
// - 'accepted': a socket accepted by net.Server, read through 'data' events (Node allocates a
//   64 KiB buffer per read). This is what a migration destination (-incoming tcp:) gets.
// - 'onread': a socket the receiver connects itself, reading into one reused 1 MiB buffer
//   (net.connect's onread), the fastest reading Node offers; Node has it only for sockets it
//   connects, so a listening destination cannot use it.
// Timed from the first write until the receiver has every byte. Bench code only.

import { type ChildProcess, fork } from 'node:child_process';
import * as net from 'node:net';
import { fileURLToPath } from 'node:url';

export type FloorMode = 'accepted' | 'onread';

const SELF = fileURLToPath(import.meta.url);
const WRITE_CHUNK = 8 << 20;

function receive(mode: FloorMode, mib: number, port: number): void {
  const ram = new Uint8Array(mib << 20);
  let off = 0;
  const take = (d: Uint8Array): void => {
    ram.set(d, off);
    off += d.length;
    if (off >= ram.length) process.send!('done');
  };
  if (mode === 'onread') {
    const callback = (n: number, buf: Uint8Array): boolean => {
      take(buf.subarray(0, n));
      return true;
    };
    net.connect({ port, host: '127.0.0.1', onread: { buffer: Buffer.alloc(1 << 20), callback } });
    return;
  }
  const srv = net.createServer((s) => s.on('data', take));
  srv.listen(0, '127.0.0.1', () => process.send!((srv.address() as net.AddressInfo).port));
}

async function message(ch: ChildProcess): Promise<unknown> {
  return new Promise((resolve, reject) => {
    ch.once('message', resolve);
    ch.once('exit', (code) => reject(new Error(`socket floor receiver exited (${code})`)));
  });
}

/** Milliseconds to move `mib` MiB between two Node processes over loopback TCP. */
export async function socketFloorMs(mode: FloorMode, mib: number): Promise<number> {
  const src = new Uint8Array(mib << 20);
  for (let i = 0; i < src.length; i += 4096) src[i] = i >>> 12;
  let sock: net.Socket;
  let ch: ChildProcess;
  let srv: net.Server | null = null;
  if (mode === 'onread') {
    const conn = new Promise<net.Socket>((resolve) => {
      srv = net.createServer(resolve);
    });
    await new Promise<void>((resolve) => srv!.listen(0, '127.0.0.1', resolve));
    ch = fork(SELF, ['recv', mode, String(mib), String((srv!.address() as net.AddressInfo).port)], { execArgv: process.execArgv });
    sock = await conn;
  } else {
    ch = fork(SELF, ['recv', mode, String(mib), '0'], { execArgv: process.execArgv });
    const port = (await message(ch)) as number;
    sock = net.connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve) => sock.once('connect', resolve));
  }
  try {
    const done = message(ch);
    const t0 = process.hrtime.bigint();
    let off = 0;
    const pump = (): void => {
      while (off < src.length) {
        const ok = sock.write(Buffer.from(src.buffer, off, Math.min(WRITE_CHUNK, src.length - off)));
        off += WRITE_CHUNK;
        if (!ok) {
          sock.once('drain', pump);
          return;
        }
      }
    };
    pump();
    await done;
    return Number(process.hrtime.bigint() - t0) / 1e6;
  } finally {
    sock.destroy();
    ch.kill();
    (srv as net.Server | null)?.close();
  }
}

if (process.argv[2] === 'recv') receive(process.argv[3] as FloorMode, Number(process.argv[4]), Number(process.argv[5]));
