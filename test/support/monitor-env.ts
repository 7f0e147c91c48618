// Test fixtures for the monitor: a fake machine with its monitor set, HMP/QMP monitors on fake
// chardev peers, and runUntilIdle, which steps the main loop until no bottom half is pending and
// no peer has input the monitor could take (bounded; throws with the iteration count).

import { aioBhPendingCount, loopStep } from '../../core/loop/index.ts';
import { qemuChrBeCanWrite } from '../../core/char/index.ts';
import {
  type MonitorHmp, type MonitorQmp, type MonitorSet, monitorInitHmp, monitorInitQmp, monitorsCreate,
} from '../../monitor/index.ts';
import { type FakeMachine, type FakeMachineOptions, fakeMachineCreate } from './fake-machine.ts';
import { type FakePeer, fakePeerConnect, fakePeerCreate, fakePeerSend, fakePeerTake } from './monitor-chardev.ts';

export interface MonitorEnv {
  fm: FakeMachine;
  mons: MonitorSet;
  peers: FakePeer[];
}

export function monitorEnvCreate(opts: FakeMachineOptions = {}): MonitorEnv {
  const fm = fakeMachineCreate(opts);
  return { fm, mons: monitorsCreate(fm.m, fm), peers: [] };
}

/** An HMP monitor on a new peer; `connect` opens it (banner and prompt). */
export function hmpOnPeer(env: MonitorEnv, label = 'compat_monitor0', connect = true): { peer: FakePeer; mon: MonitorHmp } {
  const peer = fakePeerCreate(env.fm.m, label);
  env.peers.push(peer);
  const mon = monitorInitHmp(env.mons, peer.chr);
  if ('error' in mon) throw new Error(mon.error);
  if (connect) fakePeerConnect(peer);
  return { peer, mon };
}

/** A QMP monitor on a new peer. */
export function qmpOnPeer(env: MonitorEnv, label = 'compat_monitor1', opts: { pretty?: boolean; connect?: boolean } = {}): { peer: FakePeer; mon: MonitorQmp } {
  const peer = fakePeerCreate(env.fm.m, label);
  env.peers.push(peer);
  const mon = monitorInitQmp(env.mons, peer.chr, { pretty: opts.pretty ?? false });
  if ('error' in mon) throw new Error(mon.error);
  if (opts.connect ?? true) fakePeerConnect(peer);
  return { peer, mon };
}

function idle(env: MonitorEnv): boolean {
  const loop = env.fm.m.loop;
  if (aioBhPendingCount(loop.aio) > 0 || aioBhPendingCount(loop.iohandler) > 0) return false;
  for (const p of env.peers) {
    if (p.connected && p.input.length > 0 && qemuChrBeCanWrite(p.chr) > 0) return false;
    if (p.watches.length > 0 && (p.writeBudget === null || p.writeBudget > 0)) return false;
  }
  return true;
}

/** Step the loop until idle or exited. Returns the number of iterations. */
export function runUntilIdle(env: MonitorEnv, maxIterations = 2_000_000): number {
  for (let i = 0; i < maxIterations; i++) {
    if (env.fm.m.loop.exitStatus !== null || idle(env)) return i;
    loopStep(env.fm.m);
  }
  throw new Error(`runUntilIdle: not idle after ${maxIterations} iterations`);
}

/** Send `text` on `peer`, run until idle, and return what the peer received meanwhile. */
export function exchange(env: MonitorEnv, peer: FakePeer, text: string | Uint8Array): string {
  fakePeerTake(peer);
  fakePeerSend(peer, text);
  runUntilIdle(env);
  return fakePeerTake(peer);
}
