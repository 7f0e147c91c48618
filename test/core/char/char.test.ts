// The core chardev contract with a scripted fake driver: set_handlers' order of effects (read
// handlers, set_open, focus, late OPENED), sync_state, handler removal, write / write_all with
// short writes and errno, OPENED/CLOSED tracking, the input boundary hooks, accept_input waking
// the loop, output watch tags, deinit(del), the registry and report formatting, and the
// IOWatchPoll attaching its read watch only while the frontend can read.

import { describe, expect, it } from 'vitest';
import {
  type ChardevDriver, CHR_EVENT_CLOSED, CHR_EVENT_OPENED, EAGAIN, charBackendCreate, charState,
  chardevCreate, chardevRegister, chrAddFdWatch, chrReport, chrReportFormat, ioAddWatchPoll,
  qemuChrBeEvent, qemuChrBeWrite, qemuChrFeAcceptInput, qemuChrFeDeinit, qemuChrFeInit,
  qemuChrFeRemoveWatch, qemuChrFeSetHandlers, qemuChrFeSetHandlersFull, qemuChrFeWrite,
  qemuChrFeWriteAll, qemuChrFind, qemuChrWrite, removeFdInWatch,
} from '../../../core/char/index.ts';
import {
  G_IO_IN, G_IO_OUT, hostInputAt, loopStep, qemuBhIsScheduled, vfdOpen,
} from '../../../core/loop/index.ts';
import { bytes, testMachine } from '../../support/chardev-frontend.ts';

function fake(log: string[], writes: number[] = []): ChardevDriver {
  return {
    type: 'fake',
    write: (chr, buf) => {
      const r = writes.length > 0 ? writes.shift()! : buf.length;
      if (r < 0) chr.errno = EAGAIN;
      log.push(`write:${buf.length}->${r}`);
      return r;
    },
    updateReadHandlers: () => log.push('updateReadHandlers'),
    setFeOpen: (_c, open) => log.push(`setFeOpen:${open}`),
    takeFocus: () => log.push('takeFocus'),
    acceptInput: () => log.push('acceptInput'),
    finalize: () => log.push('finalize'),
  };
}

describe('core chardev contract', () => {
  it('set_handlers: read handlers, set_open, focus, then OPENED if the backend is open', () => {
    const m = testMachine();
    const log: string[] = [];
    const chr = chardevCreate(m, 'c', fake(log), 'fake');
    qemuChrBeEvent(chr, CHR_EVENT_OPENED);
    const be = charBackendCreate();
    expect(qemuChrFeInit(be, chr)).toBe(null);
    expect(qemuChrFeInit(charBackendCreate(), chr)).toEqual({ desc: "Device 'c' is in use" });
    qemuChrFeSetHandlers(be, () => 1, () => {}, (_o, ev) => log.push(`event:${ev}`), null, null);
    expect(log).toEqual(['updateReadHandlers', 'setFeOpen:true', 'takeFocus', `event:${CHR_EVENT_OPENED}`]);
    log.length = 0;
    qemuChrFeSetHandlersFull(be, () => 1, () => {}, (_o, ev) => log.push(`event:${ev}`), null, null, true, false);
    expect(log).toEqual(['updateReadHandlers', 'takeFocus']);
    log.length = 0;
    qemuChrFeSetHandlers(be, null, null, null, null, null);
    expect(log).toEqual(['updateReadHandlers', 'setFeOpen:false']);
    expect(be.feOpen).toBe(false);
  });

  it('tracks OPENED/CLOSED without de-duplication', () => {
    const m = testMachine();
    const log: string[] = [];
    const chr = chardevCreate(m, 'c', fake(log), 'fake');
    const be = charBackendCreate();
    qemuChrFeInit(be, chr);
    qemuChrFeSetHandlers(be, () => 1, () => {}, (_o, ev) => log.push(`event:${ev}`), null, null);
    for (const ev of [CHR_EVENT_OPENED, CHR_EVENT_OPENED, CHR_EVENT_CLOSED] as const) qemuChrBeEvent(chr, ev);
    expect(chr.beOpen).toBe(false);
    expect(log.filter((l) => l.startsWith('event'))).toEqual(['event:1', 'event:1', 'event:4']);
  });

  it('write is one attempt; write_all retries short writes and stops when the backend refuses', () => {
    const m = testMachine();
    const log: string[] = [];
    const chr = chardevCreate(m, 'c', fake(log, [3, 2, -1, 2]), 'fake');
    const be = charBackendCreate();
    qemuChrFeInit(be, chr);
    expect(qemuChrFeWrite(be, bytes('0123456789'))).toBe(3);
    expect(qemuChrFeWriteAll(be, bytes('abcdefg'))).toBe(2);
    expect(log).toEqual(['write:10->3', 'write:7->2', 'write:5->-1']);
    expect(qemuChrWrite(chr, bytes('zz'), false)).toBe(2);
    expect(qemuChrFeWrite(charBackendCreate(), bytes('x'))).toBe(0);
  });

  it('write returns -1 with errno when nothing was written', () => {
    const m = testMachine();
    const chr = chardevCreate(m, 'c', fake([], [-1]), 'fake');
    const be = charBackendCreate();
    qemuChrFeInit(be, chr);
    expect(qemuChrFeWrite(be, bytes('x'))).toBe(-1);
    expect(chr.errno).toBe(EAGAIN);
  });

  it('lets input hooks see bytes at the boundary, drops input without a frontend', () => {
    const m = testMachine();
    const chr = chardevCreate(m, 'c', fake([]), 'fake');
    const seen: string[] = [];
    chr.inputHooks.push((_c, b) => seen.push(String.fromCharCode(...b)));
    qemuChrBeWrite(chr, bytes('dropped'));
    const got: string[] = [];
    const be = charBackendCreate();
    qemuChrFeInit(be, chr);
    qemuChrFeSetHandlers(be, () => 10, (_o, b) => got.push(String.fromCharCode(...b)), null, null, null);
    qemuChrBeWrite(chr, bytes('kept'));
    qemuChrBeWrite(chr, new Uint8Array(0));
    expect(seen).toEqual(['dropped', 'kept']);
    expect(got).toEqual(['kept']);
  });

  it('accept_input calls the driver and wakes the main loop', () => {
    const m = testMachine();
    const log: string[] = [];
    const chr = chardevCreate(m, 'c', fake(log), 'fake');
    const be = charBackendCreate();
    qemuChrFeInit(be, chr);
    loopStep(m);
    expect(qemuBhIsScheduled(m.loop.notifyBh)).toBe(false);
    qemuChrFeAcceptInput(be);
    expect(log).toEqual(['acceptInput']);
    expect(qemuBhIsScheduled(m.loop.notifyBh)).toBe(true);
  });

  it('hands out watch tags that can be removed once; deinit(del) destroys the chardev', () => {
    const m = testMachine();
    const log: string[] = [];
    const chr = chardevCreate(m, 'c', fake(log), 'fake');
    expect(chardevRegister(m, chr)).toBe(null);
    expect(chardevRegister(m, chr)).toBe("Chardev with id 'c' already exists");
    const be = charBackendCreate();
    qemuChrFeInit(be, chr);
    const fd = vfdOpen(m.fdt, 'out', 'stream');
    let fired = 0;
    const tag = chrAddFdWatch(chr, fd, G_IO_OUT, () => {
      fired++;
      return true;
    });
    expect(tag).toBeGreaterThan(0);
    loopStep(m);
    loopStep(m);
    expect(fired).toBe(2);
    expect(qemuChrFeRemoveWatch(be, tag)).toBe(true);
    expect(qemuChrFeRemoveWatch(be, tag)).toBe(false);
    loopStep(m);
    expect(fired).toBe(2);
    qemuChrFeDeinit(be, true);
    expect(qemuChrFind(m, 'c')).toBe(null);
    expect(log.at(-1)).toBe('finalize');
  });

  it('keeps reports until a sink is set, and formats them as QEMU prints them', () => {
    const m = testMachine();
    chrReport(m, { level: 'info', msg: 'QEMU waiting for connection on: disconnected:tcp:127.0.0.1:4444,server=on' });
    expect(charState(m).reports.length).toBe(1);
    const out: string[] = [];
    charState(m).reportSink = (r) => out.push(chrReportFormat(r, 'qemu-system-riscv32', '-monitor tcp:127.0.0.1:4444,server=on'));
    chrReport(m, { level: 'error', msg: 'Failed to find an available port: Address already in use' });
    expect(out).toEqual([
      'qemu-system-riscv32: -monitor tcp:127.0.0.1:4444,server=on: Failed to find an available port: Address already in use\n',
    ]);
    expect(chrReportFormat(charState(m).reports[0]!, 'p', null)).toBe(
      'p: info: QEMU waiting for connection on: disconnected:tcp:127.0.0.1:4444,server=on\n',
    );
  });

  it('attaches the IOWatchPoll read watch only while the frontend can read', () => {
    const m = testMachine();
    const chr = chardevCreate(m, 'c', fake([]), 'fake');
    const fd = vfdOpen(m.fdt, 'in', 'stream');
    let canRead = 0;
    const reads: number[] = [];
    chr.gsource = ioAddWatchPoll(chr, fd, () => canRead, (cond) => {
      reads.push(cond);
      fd.inbound = [];
      fd.inboundBytes = 0;
      return true;
    }, 'fake_read');
    const names = (): string[] => m.loop.sources.list.map((s) => s.name);
    hostInputAt(m.fdt, 0, { kind: 'data', fd: fd.id, data: bytes('x') });
    loopStep(m);
    expect(names()).not.toContain('chardev-iowatch-c-watch');
    expect(reads).toEqual([]);
    canRead = 1;
    loopStep(m);
    expect(names()).toContain('chardev-iowatch-c-watch');
    expect(reads).toEqual([G_IO_IN]);
    canRead = 0;
    loopStep(m);
    expect(names()).not.toContain('chardev-iowatch-c-watch');
    removeFdInWatch(chr);
    expect(names()).not.toContain('chardev-iowatch-c');
  });
});
