// The library's QMP client: an unlisted QMP monitor on a library chardev, driven by running the
// main loop until the answer arrives. It takes the same path as a socket client (the monitor
// reads one byte per iteration, commands run from the dispatcher bottom half), so events and
// replies keep QEMU's order. Used by vm.qmp() and vm.hmp() (through human-monitor-command).

import { type LoopMachine, runUntil } from '../core/loop/index.ts';
import { CHR_EVENT_OPENED, qemuChrBeEvent } from '../core/char/index.ts';
import { libraryChardevCreate, libraryChardevSend } from '../chardev/index.ts';
import type { MonitorSet } from './monitor.ts';
import { monitorInitQmp } from './qmp.ts';

/** A QMP command failed: QEMU's error class and description. */
export class QmpCommandError extends Error {
  override name = 'QmpCommandError';
  constructor(readonly errorClass: string, readonly desc: string) {
    super(desc);
  }
}

export interface QmpClient {
  /** Run `command` with `args`; its `return` value, or throws QmpCommandError. */
  command(command: string, args?: Record<string, unknown>): unknown;
}

/** Most main-loop iterations to wait for one reply. */
const REPLY_MAX_ITERATIONS = 1_000_000;

/** Create the client and negotiate capabilities. */
export function qmpClientCreate(m: LoopMachine, mons: MonitorSet): QmpClient {
  let buf = '';
  const replies = new Map<string, Record<string, unknown>>();
  const chr = libraryChardevCreate(m, '__detvm_qmp', (text) => {
    buf += text;
    for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const obj = JSON.parse(line) as Record<string, unknown>;
      if (typeof obj['id'] === 'string') replies.set(obj['id'], obj);
    }
  }, false);
  const r = monitorInitQmp(mons, chr, {});
  if ('error' in r) throw new Error(r.error);
  qemuChrBeEvent(chr, CHR_EVENT_OPENED);
  let nextId = 0;
  const command = (name: string, args?: Record<string, unknown>): unknown => {
    const id = `detvm-${nextId++}`;
    const req = args === undefined ? { execute: name, id } : { execute: name, arguments: args, id };
    libraryChardevSend(chr, Buffer.from(JSON.stringify(req) + '\n', 'utf8'));
    runUntil(m, () => replies.has(id) || m.loop.exitStatus !== null, { maxIterations: REPLY_MAX_ITERATIONS });
    const rsp = replies.get(id);
    replies.delete(id);
    if (!rsp) return undefined; // the machine quit before answering (QEMU's quit sends no reply)
    const err = rsp['error'] as { class: string; desc: string } | undefined;
    if (err) throw new QmpCommandError(err.class, err.desc);
    return rsp['return'];
  };
  command('qmp_capabilities');
  return { command };
}
