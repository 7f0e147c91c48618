// Runs the chardev contract (contract.ts) against every backend: socket server and client on
// the in-memory network, null, ringbuf, memory, file, stdio on the in-memory terminal, and a
// mux over that terminal. Method: one fresh virtual-mode machine per test.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll } from 'vitest';
import type { ChardevBackend, ChardevCommon, MemoryPeer } from '../../chardev/index.ts';
import {
  chardevMemoryIo, memoryPeerBytes, memoryPeerConnect, memoryPeerListen, memoryPeerSend,
  memoryStdioInput, qemuChardevNew, ringbufChrRead, ringbufCount,
} from '../../chardev/index.ts';
import type { LoopMachine } from '../../core/loop/index.ts';
import { binary, spinUntil, testMachine } from '../support/chardev-frontend.ts';
import { type ContractHarness, runChardevContract } from './contract.ts';

const common: ChardevCommon = { logfile: null, logappend: false };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'detvm-contract-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function create(m: LoopMachine, id: string, backend: ChardevBackend) {
  const r = qemuChardevNew(m, id, backend);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

function socketServer(connectFirst: boolean): ContractHarness {
  const m = testMachine();
  const chr = create(m, 'sock0', {
    type: 'socket', common, sock: { addr: { type: 'inet', host: '127.0.0.1', port: '4444' }, server: true, wait: false },
  });
  let peer: MemoryPeer | null = null;
  const open = (): void => {
    if (peer) return;
    const r = memoryPeerConnect(m, '127.0.0.1:4444');
    if (!r.ok) throw new Error(r.error);
    peer = r.peer;
  };
  if (connectFirst) {
    open();
    spinUntil(m, () => chr.beOpen, 'connection');
  }
  return {
    m, chr, maxFrontends: 1, open,
    feed: (d) => memoryPeerSend(peer!, d),
    output: () => (peer ? memoryPeerBytes(peer) : new Uint8Array()),
  };
}

runChardevContract('socket server, client connects after attach', () => socketServer(false));
runChardevContract('socket server, client connected before attach', () => socketServer(true));

runChardevContract('socket client (connected at creation)', () => {
  const m = testMachine();
  const srv = memoryPeerListen(m, '127.0.0.1:5555');
  if (!srv.ok) throw new Error(srv.error);
  const chr = create(m, 'client0', {
    type: 'socket', common, sock: { addr: { type: 'inet', host: '127.0.0.1', port: '5555' }, server: false },
  });
  const peer = (): MemoryPeer => srv.server.peers[0]!;
  return { m, chr, maxFrontends: 1, feed: (d) => memoryPeerSend(peer(), d), output: () => memoryPeerBytes(peer()) };
});

runChardevContract('null', () => {
  const m = testMachine();
  return { m, chr: create(m, 'null0', { type: 'null', common }), maxFrontends: 1, feed: null, output: null };
});

for (const type of ['ringbuf', 'memory'] as const) {
  runChardevContract(type, () => {
    const m = testMachine();
    const chr = create(m, `${type}0`, { type, common, size: 1024 });
    let acc = '';
    return {
      m, chr, maxFrontends: 1, feed: null,
      output: () => {
        acc += String.fromCharCode(...ringbufChrRead(chr, ringbufCount(chr)));
        return binary(acc);
      },
    };
  });
}

let fileSeq = 0;
runChardevContract('file', () => {
  const m = testMachine();
  const out = path.join(tmp, `out${fileSeq++}.txt`);
  const chr = create(m, 'file0', { type: 'file', common, out, in: null, append: false });
  return { m, chr, maxFrontends: 1, feed: null, output: () => fs.readFileSync(out) };
});

runChardevContract('stdio (in-memory terminal)', () => {
  const m = testMachine();
  const chr = create(m, 'stdio0', { type: 'stdio', common, signal: false });
  const st = chardevMemoryIo(m).stdio;
  return { m, chr, maxFrontends: 1, feed: (d) => memoryStdioInput(st, d), output: () => Uint8Array.from(st.output.flatMap((c) => [...c])) };
});

runChardevContract('mux over stdio', () => {
  const m = testMachine();
  create(m, 'con0-base', { type: 'stdio', common, signal: false });
  const chr = create(m, 'con0', { type: 'mux', common, chardev: 'con0-base' });
  const st = chardevMemoryIo(m).stdio;
  return { m, chr, maxFrontends: 4, feed: (d) => memoryStdioInput(st, d), output: () => Uint8Array.from(st.output.flatMap((c) => [...c])) };
});
