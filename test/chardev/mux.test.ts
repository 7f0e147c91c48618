// The mux chardev: the `-serial mon:stdio` start-up worked example (spec §2.4: focus events and
// OPENED held until resume_mux_open), Ctrl-A escapes with QEMU's exact texts (h ? x s t b c and
// C-a C-a), timestamps from REALTIME, the 32-byte input buffer, backend events to every
// frontend, and the 4-frontend limit. Method: in-memory terminal and peers, one shared log.

import { describe, expect, it } from 'vitest';
import {
  chardevMemoryIo, memoryPeerConnect, memoryStdioInput, memoryStdioText, muxHelpText,
  qemuChardevOptsList, qemuChardevOptsParse, qemuChrNew, qemuChrNewFromOpts, resumeMuxOpen,
  suspendMuxOpen,
} from '../../chardev/index.ts';
import {
  type Chardev, CHR_EVENT_NAMES, charBackendCreate, charState, hmpInfoChardev, qemuChrFeInit,
  qemuChrFeSetHandlers, qemuChrFeWrite,
} from '../../core/char/index.ts';
import { type LoopMachine, runFor } from '../../core/loop/index.ts';
import { bytes, spin, spinUntil, testMachine } from '../support/chardev-frontend.ts';

interface Fe {
  name: string;
  canRead: number;
  got: number[];
  be: ReturnType<typeof charBackendCreate>;
}

function attach(chr: Chardev, name: string, log: string[], canRead = 1): Fe {
  const fe: Fe = { name, canRead, got: [], be: charBackendCreate() };
  const err = qemuChrFeInit(fe.be, chr);
  if (err) throw new Error(err.desc);
  qemuChrFeSetHandlers(fe.be, () => fe.canRead, (_o, buf) => {
    for (const b of buf) fe.got.push(b);
    log.push(`${name}:read:${String.fromCharCode(...buf)}`);
  }, (_o, ev) => log.push(`${name}:${CHR_EVENT_NAMES[ev]}`), null, fe);
  return fe;
}

/**
 * `-serial mon:stdio`: the monitor attaches first, the serial device later, then machine init ends.
 */
function monStdio(m: LoopMachine, log: string[]): { chr: Chardev; mon: Fe; ser: Fe } {
  suspendMuxOpen(m);
  const r = qemuChrNew(m, qemuChardevOptsList(), 'serial0', 'mon:stdio', true);
  if (!r.ok) throw new Error(r.report?.msg ?? 'qemuChrNew failed');
  expect(r.muxMonitor).toBe(true);
  const mon = attach(r.chr, 'mon', log);
  const ser = attach(r.chr, 'ser', log);
  resumeMuxOpen(m);
  return { chr: r.chr, mon, ser };
}

describe('mux', () => {
  it('plays the -serial mon:stdio start-up: focus events, then OPENED to both after machine init', () => {
    const m = testMachine();
    const log: string[] = [];
    monStdio(m, log);
    expect(log).toEqual(['mon:MUX_IN', 'mon:MUX_OUT', 'ser:MUX_IN', 'mon:OPENED', 'ser:OPENED']);
    expect(hmpInfoChardev(m)).toBe('serial0-base: filename=stdio\nserial0: filename=mux\n');
    expect(chardevMemoryIo(m).stdio.opts?.signal).toBe(false);
  });

  it('switches focus with C-a c, sending MUX_OUT then MUX_IN, and routes input to the focus', () => {
    const m = testMachine();
    const log: string[] = [];
    const { mon, ser } = monStdio(m, log);
    log.length = 0;
    const st = chardevMemoryIo(m).stdio;
    memoryStdioInput(st, 'a\x01cb\x01cc');
    spinUntil(m, () => mon.got.length + ser.got.length === 3, 'input');
    expect(log).toEqual(['ser:read:a', 'ser:MUX_OUT', 'mon:MUX_IN', 'mon:read:b', 'mon:MUX_OUT', 'ser:MUX_IN', 'ser:read:c']);
  });

  it('prints QEMU\'s help for C-a h and C-a ?, passes C-a C-a through, drops unknown escapes', () => {
    const m = testMachine();
    const log: string[] = [];
    const { ser } = monStdio(m, log);
    const st = chardevMemoryIo(m).stdio;
    memoryStdioInput(st, '\x01h\x01\x01\x01z!');
    spinUntil(m, () => ser.got.length === 2, 'input');
    expect(ser.got).toEqual([0x01, 0x21]);
    const help = '\n\rC-a h    print this help\n\rC-a x    exit emulator\n\r'
      + 'C-a s    save disk data back to file (if -snapshot)\n\rC-a t    toggle console timestamps\n\r'
      + 'C-a b    send break (magic sysrq)\n\rC-a c    switch between console and monitor\n\r'
      + 'C-a C-a  sends C-a\n\r';
    expect(memoryStdioText(st)).toBe(help);
    expect(muxHelpText(0x14).startsWith('\n\rC-t h    print this help')).toBe(true);
    expect(muxHelpText(0x7f).startsWith('\n\rEscape-Char set to Ascii: 0x7f\n\r\n\rEscape-Char h    print this help\n\r')).toBe(true);
  });

  it('C-a x prints "QEMU: Terminated" and asks the machine to exit; later input is ignored', () => {
    const m = testMachine();
    const log: string[] = [];
    const { chr, ser } = monStdio(m, log);
    const exits: string[] = [];
    charState(m).hooks.muxExit = (c) => exits.push(c.label);
    memoryStdioInput(chardevMemoryIo(m).stdio, 'a\x01xb');
    spin(m, 10);
    expect(ser.got).toEqual([0x61]);
    expect(memoryStdioText(chardevMemoryIo(m).stdio)).toBe('QEMU: Terminated\n\r');
    expect(exits).toEqual([chr.label]);
  });

  it('C-a b sends BREAK to the focused frontend only; C-a s asks for blk_commit_all', () => {
    const m = testMachine();
    const log: string[] = [];
    monStdio(m, log);
    let commits = 0;
    charState(m).hooks.blkCommitAll = () => commits++;
    log.length = 0;
    memoryStdioInput(chardevMemoryIo(m).stdio, '\x01b\x01s');
    spin(m, 10);
    expect(log).toEqual(['ser:BREAK']);
    expect(commits).toBe(1);
  });

  it('C-a t stamps line starts with REALTIME elapsed since the first stamp', () => {
    const m = testMachine();
    const log: string[] = [];
    const { ser } = monStdio(m, log);
    const st = chardevMemoryIo(m).stdio;
    memoryStdioInput(st, '\x01t');
    spin(m, 5);
    qemuChrFeWrite(ser.be, bytes('a\nb\n'));
    runFor(m, 1_500_000_000);
    qemuChrFeWrite(ser.be, bytes('c\n'));
    runFor(m, 3_661_001_000_000);
    qemuChrFeWrite(ser.be, bytes('d'));
    expect(memoryStdioText(st)).toBe('a\n[00:00:00.000] b\n[00:00:01.500] c\n[01:01:02.501] d');
  });

  it('buffers 32 bytes for a focused frontend that cannot read, then stops reading the backend', () => {
    const m = testMachine();
    const log: string[] = [];
    const { ser } = monStdio(m, log);
    ser.canRead = 0;
    const st = chardevMemoryIo(m).stdio;
    memoryStdioInput(st, 'x'.repeat(50));
    spin(m, 100);
    expect(ser.got.length).toBe(0);
    expect(st.ends!.in.inboundBytes).toBe(18);
    ser.canRead = 1;
    memoryStdioInput(st, '');
    spinUntil(m, () => ser.got.length === 50, 'all delivered');
  });

  it('forwards backend events (a socket connecting) to every frontend', () => {
    const m = testMachine();
    const list = qemuChardevOptsList();
    const p = qemuChardevOptsParse(list, 'socket,id=mon0,host=127.0.0.1,port=4444,server=on,wait=off,mux=on');
    if (!p.ok) throw new Error(p.error);
    const r = qemuChrNewFromOpts(m, p.value);
    if (!r.ok) throw new Error(r.error);
    const log: string[] = [];
    attach(r.chr, 'a', log);
    attach(r.chr, 'b', log);
    expect(log).toEqual(['a:MUX_IN', 'a:OPENED', 'a:MUX_OUT', 'b:MUX_IN', 'b:OPENED']);
    log.length = 0;
    memoryPeerConnect(m, '127.0.0.1:4444');
    spinUntil(m, () => log.length === 2, 'OPENED to both');
    expect(log).toEqual(['a:OPENED', 'b:OPENED']);
  });

  it('takes 4 frontends, then "Device \'%s\' is in use"', () => {
    const m = testMachine();
    const log: string[] = [];
    const { chr } = monStdio(m, log);
    attach(chr, 'c', log);
    attach(chr, 'd', log);
    expect(qemuChrFeInit(charBackendCreate(), chr)).toEqual({ desc: "Device 'serial0' is in use" });
  });
});
