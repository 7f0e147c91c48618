// -chardev option parsing and the legacy chardev syntax (QEMU 7.2 util/qemu-option.c,
// chardev/char.c, chardev/char-socket.c): ",," escapes, boolean spellings, deprecated
// short-form flags with QEMU's warning, typed values, IDs, every error text, legacy forms
// (tcp:, telnet:, unix:, file:, stdio, null, mon:), mux=on, chardev-add/remove/send-break.

import { describe, expect, it } from 'vitest';
import {
  type ChardevBackend, chardevBackendFromQapi, qmpQueryChardevBackends, qemuChardevOptsList,
  qemuChardevOptsParse, qemuChrBackendHelp, qemuChrNew, qemuChrNewFromOpts, qemuChrParseCompat,
  qemuChrParseOpts, qemuOptGet, qmpChardevAdd, qmpChardevRemove, qmpChardevSendBreak,
} from '../../chardev/index.ts';
import {
  chrReportFormat, hmpInfoChardev, qemuChrFind, qmpQueryChardev,
} from '../../core/char/index.ts';
import { testFrontendAttach, testMachine } from '../support/chardev-frontend.ts';

function parse(arg: string) {
  return qemuChardevOptsParse(qemuChardevOptsList(), arg);
}

function backend(arg: string): ChardevBackend | string {
  const p = parse(arg);
  if (!p.ok) return p.error;
  const b = qemuChrParseOpts(p.value);
  return b.ok ? b.value : b.error;
}

describe('-chardev parsing', () => {
  it('reads the implied backend, id, ",," escapes and every boolean spelling', () => {
    const p = parse('file,id=f0,path=a,,b.txt,append=yes');
    if (!p.ok) throw new Error(p.error);
    expect(p.value.id).toBe('f0');
    expect(qemuOptGet(p.value, 'backend')).toBe('file');
    expect(backend('file,id=f0,path=a,,b.txt,append=yes')).toEqual({
      type: 'file', common: { logfile: null, logappend: false }, out: 'a,b.txt', in: null, append: true,
    });
    for (const [v, b] of [['on', true], ['true', true], ['y', true], ['off', false], ['no', false], ['n', false]] as const) {
      const s = backend(`socket,id=s,host=h,port=1,server=${v}`);
      expect(typeof s === 'object' && s.type === 'socket' && s.sock.server).toBe(b);
    }
  });

  it('accepts the deprecated short flags with QEMU\'s warning text', () => {
    const p = parse('socket,id=mon0,host=127.0.0.1,port=4444,server,nowait,nodelay');
    if (!p.ok) throw new Error(p.error);
    expect(p.warnings).toEqual([
      { level: 'warning', msg: "short-form boolean option 'server' deprecated", hint: 'Please use server=on instead\n' },
      { level: 'warning', msg: "short-form boolean option 'nowait' deprecated", hint: 'Please use wait=off instead\n' },
      { level: 'warning', msg: "short-form boolean option 'nodelay' deprecated", hint: 'Please use nodelay=on instead\n' },
    ]);
    expect(chrReportFormat(p.warnings[1]!, 'detvm', '-chardev socket,id=mon0,...')).toBe(
      "detvm: -chardev socket,id=mon0,...: warning: short-form boolean option 'nowait' deprecated\nPlease use wait=off instead\n",
    );
    const b = qemuChrParseOpts(p.value);
    expect(b.ok && b.value.type === 'socket' && b.value.sock).toEqual({
      addr: { type: 'inet', host: '127.0.0.1', port: '4444' }, server: true, wait: false, nodelay: true,
    });
  });

  const errors: [string, string][] = [
    ['socket,id=s,foo=1', "Invalid parameter 'foo'"],
    ['socket,id=s,server=maybe', "Parameter 'server' expects 'on' or 'off'"],
    ['socket,id=s,host=h,port=1,reconnect=x', "Parameter 'reconnect' expects a number"],
    ['ringbuf,id=r,size=12Q', "Parameter 'size' expects a non-negative number below 2^64"],
    ['null,id=1bad', "Parameter 'id' expects an identifier"],
  ];
  for (const [arg, msg] of errors) {
    it(`rejects "${arg}": ${msg}`, () => {
      expect(parse(arg)).toEqual({ ok: false, error: msg });
    });
  }

  it('rejects a duplicate id in the same option list', () => {
    const list = qemuChardevOptsList();
    expect(qemuChardevOptsParse(list, 'null,id=c0').ok).toBe(true);
    expect(qemuChardevOptsParse(list, 'ringbuf,id=c0')).toEqual({ ok: false, error: "Duplicate ID 'c0' for chardev" });
  });

  const backendErrors: [string, string][] = [
    ['id=c0', 'chardev: "c0" missing backend'],
    ['nosuch,id=c0', "'nosuch' is not a valid char driver name"],
    ['pty,id=c0', "chardev backend 'pty' is not supported by detvm"],
    ['socket,id=c0,path=/x,host=h,port=1', "None or one of 'path', 'fd' or 'host' option required."],
    ['socket,id=c0,host=127.0.0.1', 'chardev: socket: no port given'],
    ['socket,id=c0,host=h,port=1,delay=on,nodelay=on', "'delay' and 'nodelay' are mutually exclusive"],
    ['file,id=c0', 'chardev: file: no filename given'],
    ['mux,id=c0', 'chardev: mux: no chardev given'],
  ];
  for (const [arg, msg] of backendErrors) {
    it(`fails "${arg}" with ${msg}`, () => {
      expect(backend(arg)).toBe(msg);
    });
  }

  it('creates from options: no id, help, power-of-two ringbuf, mux=on as ID-base + ID', () => {
    const m = testMachine();
    const list = qemuChardevOptsList();
    const noId = qemuChardevOptsParse(list, 'null');
    if (!noId.ok) throw new Error(noId.error);
    expect(qemuChrNewFromOpts(m, noId.value)).toEqual({ ok: false, error: 'chardev: no id specified' });
    const help = qemuChardevOptsParse(list, 'help');
    if (!help.ok) throw new Error(help.error);
    expect(qemuChrNewFromOpts(m, help.value)).toEqual({ ok: false, error: '', help: qemuChrBackendHelp() });
    const rb = qemuChardevOptsParse(list, 'ringbuf,id=r0,size=1000');
    if (!rb.ok) throw new Error(rb.error);
    expect(qemuChrNewFromOpts(m, rb.value)).toEqual({ ok: false, error: 'size of ringbuf chardev must be power of two' });
    const mx = qemuChardevOptsParse(list, 'ringbuf,id=c1,size=1k,mux=on');
    if (!mx.ok) throw new Error(mx.error);
    const r = qemuChrNewFromOpts(m, mx.value);
    expect(r.ok && r.chr.label).toBe('c1');
    expect(hmpInfoChardev(m)).toBe('c1-base: filename=ringbuf\nc1: filename=mux\n');
  });
});

describe('legacy chardev syntax', () => {
  function compat(spec: string, permitMuxMon = true): Record<string, string> | string | null {
    const r = qemuChrParseCompat(qemuChardevOptsList(), 'serial0', spec, permitMuxMon);
    if (!r.ok) return r.report ? r.report.msg : null;
    return Object.fromEntries(r.opts.opts.map((o) => [o.name, o.str]));
  }

  it('parses tcp:, telnet:, unix:, file:, stdio, null and mon:', () => {
    expect(compat('tcp:127.0.0.1:4444,server,nowait')).toEqual({ backend: 'socket', host: '127.0.0.1', port: '4444', server: 'on', wait: 'off' });
    expect(compat('tcp::4444,server=on')).toEqual({ backend: 'socket', host: '', port: '4444', server: 'on' });
    expect(compat('telnet:localhost:23,server=on,wait=off')).toEqual({
      backend: 'socket', host: 'localhost', port: '23', server: 'on', wait: 'off', telnet: 'on',
    });
    expect(compat('unix:/tmp/m.sock,server=on,wait=off')).toEqual({ backend: 'socket', path: '/tmp/m.sock', server: 'on', wait: 'off' });
    expect(compat('file:/tmp/out.log')).toEqual({ backend: 'file', path: '/tmp/out.log' });
    expect(compat('stdio')).toEqual({ backend: 'stdio' });
    expect(compat('null')).toEqual({ backend: 'null' });
    expect(compat('mon:stdio')).toEqual({ mux: 'on', signal: 'off', backend: 'stdio' });
    expect(compat('mon:tcp:127.0.0.1:5555,server=on,wait=off')).toMatchObject({ mux: 'on', backend: 'socket', port: '5555' });
  });

  it('reports QEMU\'s errors (or none, where QEMU leaves it to the caller)', () => {
    expect(compat('mon:stdio', false)).toBe("mon: isn't supported in this context");
    expect(compat('bogus')).toBe("'bogus' is not a valid char driver");
    expect(compat('tcp:localhost')).toBe(null);
    expect(compat('tcp:h:1,frob=2')).toBe("Invalid parameter 'frob'");
  });

  it('creates the chardev, with a monitor request for mon:', () => {
    const m = testMachine();
    const r = qemuChrNew(m, qemuChardevOptsList(), 'compat_monitor0', 'tcp:127.0.0.1:4444,server=on,wait=off', true);
    expect(r.ok && r.muxMonitor).toBe(false);
    expect(qmpQueryChardev(m)).toEqual([
      { label: 'compat_monitor0', filename: 'disconnected:tcp:127.0.0.1:4444,server=on', 'frontend-open': false },
    ]);
  });
});

describe('QMP chardev-add / chardev-remove / chardev-send-break', () => {
  it('uses QEMU\'s texts and refuses to remove a busy chardev', () => {
    const m = testMachine();
    const common = { logfile: null, logappend: false };
    expect(qmpChardevAdd(m, 'r0', { type: 'ringbuf', common }).ok).toBe(true);
    expect(qmpChardevAdd(m, 'r0', { type: 'null', common })).toEqual({ ok: false, error: "Chardev with id 'r0' already exists" });
    expect(qmpChardevAdd(m, 'r1', { type: 'ringbuf', common, size: 3 })).toEqual({
      ok: false, error: "Failed to add chardev 'r1': size of ringbuf chardev must be power of two",
    });
    const fe = testFrontendAttach(qemuChrFind(m, 'r0')!);
    expect(qmpChardevRemove(m, 'r0')).toEqual({ ok: false, error: "Chardev 'r0' is busy" });
    expect(qmpChardevRemove(m, 'nope')).toEqual({ ok: false, error: "Chardev 'nope' not found" });
    expect(qmpChardevSendBreak(m, 'r0')).toEqual({ ok: true, value: undefined });
    expect(fe.events.at(-1)).toBe('BREAK');
    expect(qmpChardevSendBreak(m, 'nope')).toEqual({ ok: false, error: "Chardev 'nope' not found" });
  });
});

describe('QMP chardev-add backend argument', () => {
  it('converts the QAPI form with QMP defaults, and reports missing members as QEMU does', () => {
    const m = testMachine();
    const b = chardevBackendFromQapi({ type: 'socket', data: { addr: { type: 'inet', data: { host: '127.0.0.1', port: '4455' } } } });
    if (!b.ok) throw new Error(b.error);
    const r = qmpChardevAdd(m, 'q0', b.value);
    expect(r.ok && r.value.filename).toBe('disconnected:tcp:127.0.0.1:4455,server=on');
    expect(chardevBackendFromQapi({ type: 'file', data: {} })).toEqual({ ok: false, error: "Parameter 'backend.data.out' is missing" });
    expect(chardevBackendFromQapi({ type: 'socket', data: { addr: { type: 'inet', data: { host: 'h', port: 1 } } } })).toEqual({
      ok: false, error: "Invalid parameter type for 'backend.data.addr.data.port', expected: string",
    });
    expect(qmpQueryChardevBackends().map((b) => b.name)).toContain('ringbuf');
  });
});
