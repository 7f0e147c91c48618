// The file chardev (path=, append=, in= input through flow control, CLOSED at EOF), logfile=,
// and the stdio chardev on the in-memory terminal (one per machine, signal=on raising the
// machine's signal hook, the terminal released when the chardev goes). Method: real files in
// a temporary directory, virtual-mode machines.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  chardevMemoryIo, memoryStdioEof, memoryStdioInput, qemuChardevNew, qmpChardevRemove,
} from '../../chardev/index.ts';
import { charState, qemuChrFeDeinit, qemuChrFeWrite } from '../../core/char/index.ts';
import {
  bytes, spinUntil, testFrontendAttach, testFrontendText, testMachine,
} from '../support/chardev-frontend.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'detvm-file-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const common = { logfile: null, logappend: false };

describe('file chardev', () => {
  it('truncates or appends path=, and reads in= with flow control, then CLOSED', () => {
    const m = testMachine();
    const out = path.join(tmp, 'out.txt');
    const inp = path.join(tmp, 'in.txt');
    fs.writeFileSync(out, 'old\n');
    const content = 'x'.repeat(70_000) + 'END';
    fs.writeFileSync(inp, content);
    const r = qemuChardevNew(m, 'f0', { type: 'file', common, out, in: inp, append: false });
    if (!r.ok) throw new Error(r.error);
    const fe = testFrontendAttach(r.value, 'fe', 1000);
    expect(fs.readFileSync(out, 'utf8')).toBe('');
    qemuChrFeWrite(fe.be, bytes('new\n'));
    spinUntil(m, () => fe.events.includes('CLOSED'), 'end of input');
    expect(testFrontendText(fe)).toBe(content);
    expect(Math.max(...fe.reads)).toBe(1000);
    expect(fe.events).toEqual(['OPENED', 'CLOSED']);
    const a = qemuChardevNew(m, 'f1', { type: 'file', common, out, in: null, append: true });
    if (!a.ok) throw new Error(a.error);
    qemuChrFeWrite(testFrontendAttach(a.value).be, bytes('more\n'));
    expect(fs.readFileSync(out, 'utf8')).toBe('new\nmore\n');
  });

  it('fails with QEMU\'s open error', () => {
    const m = testMachine();
    const bad = path.join(tmp, 'no', 'such', 'dir.txt');
    expect(qemuChardevNew(m, 'f0', { type: 'file', common, out: bad, in: null, append: false })).toEqual({
      ok: false, error: `Could not open '${bad}': No such file or directory`,
    });
  });

  it('copies written bytes to logfile=', () => {
    const m = testMachine();
    const log = path.join(tmp, 'log.txt');
    const r = qemuChardevNew(m, 'r0', { type: 'ringbuf', common: { logfile: log, logappend: false } });
    if (!r.ok) throw new Error(r.error);
    qemuChrFeWrite(testFrontendAttach(r.value).be, bytes('logged'));
    expect(fs.readFileSync(log, 'utf8')).toBe('logged');
  });
});

describe('stdio chardev (in-memory terminal)', () => {
  it('allows one stdio chardev, raises the signal hook for ^C with signal=on, releases the terminal', () => {
    const m = testMachine();
    const r = qemuChardevNew(m, 'st', { type: 'stdio', common, signal: true });
    if (!r.ok) throw new Error(r.error);
    expect(qemuChardevNew(m, 'st2', { type: 'stdio', common })).toEqual({
      ok: false, error: 'cannot use stdio by multiple character devices',
    });
    const sigs: string[] = [];
    charState(m).hooks.stdioSignal = (s) => sigs.push(s);
    const fe = testFrontendAttach(r.value);
    const st = chardevMemoryIo(m).stdio;
    expect(st.echo).toBe(false);
    memoryStdioInput(st, 'a\x03b\x1cc');
    spinUntil(m, () => fe.received.length === 3, 'input');
    expect(testFrontendText(fe)).toBe('abc');
    expect(sigs).toEqual(['SIGINT', 'SIGQUIT']);
    memoryStdioEof(st);
    spinUntil(m, () => fe.events.includes('CLOSED'), 'EOF');
    qemuChrFeDeinit(fe.be);
    expect(qmpChardevRemove(m, 'st')).toEqual({ ok: true, value: undefined });
    expect(st.echo).toBe(true);
    expect(charState(m).stdioInUse).toBe(false);
    expect(qemuChardevNew(m, 'st3', { type: 'stdio', common }).ok).toBe(true);
  });
});
