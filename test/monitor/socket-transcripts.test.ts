// The same conformance transcripts, now over the real socket chardev (chardev/char-socket.ts,
// tcp:127.0.0.1:4444,server=on,wait=off) with an in-memory client (chardev/memory-peer.ts): the
// monitor reads through the socket's IOWatchPoll-style flow control, one byte per iteration.

import { describe, expect, it } from 'vitest';
import { aioBhPendingCount, loopStep } from '../../core/loop/index.ts';
import { qemuChrNew, qemuChardevOptsList } from '../../chardev/index.ts';
import { type MemoryPeer, memoryPeerBytes, memoryPeerClose, memoryPeerConnect, memoryPeerSend } from '../../chardev/memory-peer.ts';
import { monitorInitHmp, monitorInitQmp } from '../../monitor/index.ts';
import { monitorEnvCreate, type MonitorEnv } from '../support/monitor-env.ts';
import { loadTranscript, maskVolatile, type MaskOptions } from '../support/transcript.ts';
import { registerLaterCommandStandIns } from '../support/monitor-later-commands.ts';

function settle(env: MonitorEnv): void {
  const m = env.fm.m;
  for (let i = 0, quiet = 0; i < 2_000_000 && m.loop.exitStatus === null; i++) {
    const busy = aioBhPendingCount(m.loop.aio) > 0 || aioBhPendingCount(m.loop.iohandler) > 0
      || m.fdt.scheduled.length > 0 || [...m.fdt.fds.values()].some((f) => f.inboundBytes > 0);
    quiet = busy ? 0 : quiet + 1;
    if (quiet > 3) return;
    loopStep(m);
  }
}

function replay(name: string, kind: 'hmp' | 'qmp', mask: MaskOptions = {}): { actual: string; expected: string } {
  const env = monitorEnvCreate({});
  registerLaterCommandStandIns(env.mons);
  const m = env.fm.m;
  const r = qemuChrNew(m, qemuChardevOptsList(), 'compat_monitor0', 'tcp:127.0.0.1:4444,server=on,wait=off', false);
  if (!r.ok) throw new Error(`chardev: ${JSON.stringify(r.report)}`);
  const mon = kind === 'hmp' ? monitorInitHmp(env.mons, r.chr) : monitorInitQmp(env.mons, r.chr);
  if ('error' in mon) throw new Error(mon.error);
  const peers: MemoryPeer[] = [];
  const connect = (): MemoryPeer => {
    const c = memoryPeerConnect(m, '127.0.0.1:4444');
    if (!c.ok) throw new Error(c.error);
    peers.push(c.peer);
    settle(env);
    return c.peer;
  };
  let peer = connect();
  for (const e of loadTranscript(name).events) {
    if (m.loop.exitStatus !== null) break;
    if (e.dir === '>>') {
      memoryPeerSend(peer, e.data);
      settle(env);
    } else if (e.dir === '##' && /^(second|new) connection/.test(Buffer.from(e.data).toString('latin1'))) {
      memoryPeerClose(peer);
      settle(env);
      peer = connect();
    }
  }
  const actual = Buffer.concat(peers.map((p) => Buffer.from(memoryPeerBytes(p)))).toString('latin1');
  return { actual: maskVolatile(actual, mask), expected: maskVolatile(Buffer.from(loadTranscript(name).rx).toString('latin1'), mask) };
}

describe('conformance transcripts over the socket chardev (in-memory client)', () => {
  for (const [name, kind] of [
    ['hmp-banner', 'hmp'], ['hmp-info-status', 'hmp'], ['hmp-lineedit', 'hmp'], ['hmp-line-endings', 'hmp'],
    ['hmp-system-reset', 'hmp'], ['hmp-quit', 'hmp'], ['qmp-greeting', 'qmp'], ['qmp-negotiation', 'qmp'],
    ['qmp-status', 'qmp'], ['qmp-errors', 'qmp'], ['qmp-quit', 'qmp'],
  ] as const) {
    it(`${name} matches QEMU 7.2.22 (masked)`, () => {
      const r = replay(name, kind);
      expect(r.actual).toBe(r.expected);
    });
  }
});

import { qemuChardevOptsParse, qemuChrNewFromOpts } from '../../chardev/index.ts';
import { chardevMonitorBindings } from '../../monitor/index.ts';
import { exchange, hmpOnPeer, runUntilIdle } from '../support/monitor-env.ts';

describe('chardev bindings over the real registry', () => {
  it('ringbuf_write / ringbuf_read / info chardev with a real ringbuf chardev', () => {
    const env = monitorEnvCreate({});
    const m = env.fm.m;
    const o = qemuChardevOptsParse(qemuChardevOptsList(), 'ringbuf,id=rb0,size=8');
    if (!o.ok) throw new Error('opts');
    const r = qemuChrNewFromOpts(m, o.value);
    if (!r.ok) throw new Error('chardev');
    Object.assign(env.fm, chardevMonitorBindings(m));
    const { peer } = hmpOnPeer(env);
    runUntilIdle(env);
    const run = (l: string): string => {
      const out = exchange(env, peer, l + '\n');
      return out.slice(out.indexOf('\r\n') + 2, out.length - 7);
    };
    expect(run('ringbuf_write rb0 0123456789')).toBe('');
    expect(run('ringbuf_read rb0 100')).toBe('23456789\r\n');
    expect(run('ringbuf_read nope 1')).toBe("Error: Device 'nope' not found\r\n");
    expect(run('info chardev')).toContain('rb0: filename=');
  });
});
