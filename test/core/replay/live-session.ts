// A live recording session for tests and benchmarks: an in-process live machine (real clocks,
// real sockets on 127.0.0.1 ephemeral ports) with an HMP and a QMP monitor and a printing guest,
// recorded with -icount rr=record, driven by node:net clients. Every wait is on a condition that
// the live driver's iteration callback checks (no sleeps); every condition has a guard timeout.

import * as net from 'node:net';
import { createMachine, type DetvmMachine, type MachineConfig, type TraceRecord } from '../../../index.ts';
import { liveHost, liveStartup, runLive } from '../../../bin/live.ts';
import { charState } from '../../../core/char/index.ts';
import { listenPort } from '../../support/chardev-live.ts';

export interface LiveClient {
  socket: net.Socket;
  /** Everything received, as latin1. */
  text(): string;
  send(s: string): void;
}

export interface LiveSession {
  vm: DetvmMachine;
  hmp: LiveClient;
  qmp: LiveClient;
  /** Resolve once `pred` holds (checked after every iteration and every client event). */
  until(what: string, pred: () => boolean, timeoutMs?: number): Promise<void>;
  /** Send an HMP line and wait for the next prompt. */
  hmpCommand(line: string): Promise<string>;
  /** Send a QMP command and wait for its reply (matched by id). */
  qmpCommand(execute: string, args?: Record<string, unknown>): Promise<Record<string, unknown>>;
  /**
   * Wait for the main loop to exit, then close the machine (as qemu_cleanup) and wait for the
   * clients to see their connections close. Returns the exit status and the trace hash at exit.
   */
  finish(): Promise<{ status: number | null; traceHash: string; records: TraceRecord[] }>;
}

function client(port: number, wake: () => void): Promise<LiveClient & { closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let closedResolve = (): void => {};
    const closed = new Promise<void>((r) => (closedResolve = r));
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.setNoDelay(true);
      resolve({ socket: s, text: () => Buffer.concat(chunks).toString('latin1'), send: (x) => void s.write(Buffer.from(x, 'latin1')), closed });
    });
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      wake();
    });
    s.on('close', () => {
      closedResolve();
      wake();
    });
    s.on('error', (e) => reject(e));
  });
}

/** Start a recording live machine with HMP and QMP on TCP; connect both clients. */
export async function liveSessionStart(cfg: MachineConfig): Promise<LiveSession> {
  const live = liveHost();
  const vm = createMachine({
    monitors: ['tcp:127.0.0.1:0,server=on,wait=off'], qmp: ['tcp:127.0.0.1:0,server=on,wait=off'],
    ...cfg, clock: 'live', host: live.host,
  });
  const err = await liveStartup(vm.kernel, live.io());
  if (err) throw new Error(err);
  const waiters: Array<{ pred: () => boolean; resolve: () => void }> = [];
  const check = (): void => {
    for (let i = waiters.length - 1; i >= 0; i--) if (waiters[i]!.pred()) waiters.splice(i, 1)[0]!.resolve();
  };
  const wake = (): void => {
    live.io().wake();
    check();
  };
  const run = runLive(vm.kernel, live.io(), check);
  const chardevs = charState(vm.kernel).chardevs;
  const hmp = await client(listenPort(chardevs.get('compat_monitor0')!.filename), wake);
  const qmp = await client(listenPort(chardevs.get('compat_monitor1')!.filename), wake);
  const until = (what: string, pred: () => boolean, timeoutMs = 20_000): Promise<void> => new Promise((resolve, reject) => {
    if (pred()) return resolve();
    const guard = setTimeout(() => reject(new Error(`live session: ${what} did not happen`)), timeoutMs);
    waiters.push({ pred, resolve: () => { clearTimeout(guard); resolve(); } });
    live.io().wake();
  });
  let qmpId = 0;
  return {
    vm, hmp, qmp, until,
    hmpCommand: async (line) => {
      const before = hmp.text().length;
      hmp.send(`${line}\r`);
      await until(`the reply to ${line}`, () => hmp.text().slice(before + line.length).includes('(qemu) '));
      return hmp.text().slice(before);
    },
    qmpCommand: async (execute, args) => {
      const id = `c${qmpId++}`;
      qmp.send(JSON.stringify(args ? { execute, arguments: args, id } : { execute, id }) + '\n');
      let reply: Record<string, unknown> | null = null;
      await until(`the reply to ${execute}`, () => {
        for (const line of qmp.text().split('\n')) {
          if (!line.includes(`"${id}"`)) continue;
          reply = JSON.parse(line) as Record<string, unknown>;
          return true;
        }
        return false;
      });
      return reply!;
    },
    finish: async () => {
      const status = await run.done;
      const traceHash = vm.trace.hash();
      const records = [...vm.trace.records()];
      vm.close();
      await Promise.all([hmp.closed, qmp.closed]);
      live.io().close();
      return { status, traceHash, records };
    },
  };
}
