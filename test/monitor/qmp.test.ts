// QMP over an in-memory chardev with the fake machine: dispatch errors and their texts, id
// placement, negotiation, pretty output, ringbuf and human-monitor-command, request queueing and
// suspension, events (negotiated monitors only, newest monitor first, rate limits) and the
// round-robin dispatcher across monitors.

import { describe, expect, it } from 'vitest';
import { notifierListNotify } from '../../core/util/index.ts';
import { runFor } from '../../core/loop/index.ts';
import { exchange, monitorEnvCreate, qmpOnPeer, hmpOnPeer, runUntilIdle } from '../support/monitor-env.ts';
import { fakePeerConnect, fakePeerDisconnect, fakePeerSend, fakePeerTake } from '../support/monitor-chardev.ts';
import { loopStep } from '../../core/loop/index.ts';
import { maskVolatile } from '../support/transcript.ts';

function negotiated(opts: Parameters<typeof monitorEnvCreate>[0] = {}) {
  const env = monitorEnvCreate(opts);
  const q = qmpOnPeer(env);
  runUntilIdle(env);
  exchange(env, q.peer, '{"execute": "qmp_capabilities"}');
  return { env, ...q };
}

const ev = (s: string): string => maskVolatile(s);

describe('QMP dispatch', () => {
  it('answers the checks of qmp_dispatch with QEMU texts and classes', () => {
    const { env, peer } = negotiated();
    const ask = (t: string): string => exchange(env, peer, t);
    expect(ask('{"execute": "query-status", "exec-oob": "x"}')).toBe(
      '{"error": {"class": "GenericError", "desc": "QMP input member \'exec-oob\' is unexpected"}}\r\n');
    expect(ask('{"execute": "nope", "id": [1]}')).toBe(
      '{"id": [1], "error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}}\r\n');
    expect(ask('{"execute": "ringbuf-read", "arguments": {"device": "r"}}')).toBe(
      '{"error": {"class": "GenericError", "desc": "Parameter \'size\' is missing"}}\r\n');
    expect(ask('{"execute": "ringbuf-read", "arguments": {"device": "r", "size": "1"}}')).toBe(
      '{"error": {"class": "GenericError", "desc": "Invalid parameter type for \'size\', expected: integer"}}\r\n');
    expect(ask('{"execute": "ringbuf-read", "arguments": {"device": "r", "size": 1, "format": "hex"}}')).toBe(
      '{"error": {"class": "GenericError", "desc": "Parameter \'format\' does not accept value \'hex\'"}}\r\n');
    expect(ask('{"execute": "ringbuf-read", "arguments": {"device": "nope", "size": 1}}')).toBe(
      '{"error": {"class": "GenericError", "desc": "Device \'nope\' not found"}}\r\n');
    expect(ask('{"execute": "qmp_capabilities", "arguments": {"enable": [1]}}')).toBe(
      '{"error": {"class": "GenericError", "desc": "Invalid parameter type for \'enable[0]\', expected: string"}}\r\n');
  });

  it('offers no oob without an I/O thread and refuses to enable it', () => {
    const env = monitorEnvCreate();
    const q = qmpOnPeer(env, 'q', { connect: false });
    q.mon.useIoThread = false;
    fakePeerConnect(q.peer);
    runUntilIdle(env);
    expect(fakePeerTake(q.peer)).toContain('"capabilities": []');
    expect(exchange(env, q.peer, '{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}')).toBe(
      '{"error": {"class": "GenericError", "desc": "Capability oob not available"}}\r\n');
  });

  it('prints pretty JSON with pretty=on', () => {
    const env = monitorEnvCreate();
    const q = qmpOnPeer(env, 'q', { pretty: true });
    runUntilIdle(env);
    expect(fakePeerTake(q.peer)).toBe([
      '{', '    "QMP": {', '        "version": {', '            "qemu": {', '                "micro": 22,',
      '                "minor": 2,', '                "major": 7', '            },', '            "package": "detvm 0.1.0"',
      '        },', '        "capabilities": [', '            "oob"', '        ]', '    }', '}', '',
    ].join('\r\n'));
    expect(exchange(env, q.peer, '{"execute": "qmp_capabilities"}')).toBe('{\r\n    "return": {\r\n    }\r\n}\r\n');
  });

  it('ringbuf-write / ringbuf-read in utf8 and base64', () => {
    const { env, peer } = negotiated({ ringbufs: { rb: 8 } });
    expect(exchange(env, peer, '{"execute": "ringbuf-write", "arguments": {"device": "rb", "data": "h\\u00e9llo, world"}}')).toBe('{"return": {}}\r\n');
    expect(exchange(env, peer, '{"execute": "ringbuf-read", "arguments": {"device": "rb", "size": 3}}')).toBe('{"return": "o, "}\r\n');
    expect(exchange(env, peer, '{"execute": "ringbuf-read", "arguments": {"device": "rb", "size": 100, "format": "base64"}}')).toBe('{"return": "d29ybGQ="}\r\n');
    expect(exchange(env, peer, '{"execute": "ringbuf-read", "arguments": {"device": "rb", "size": 0}}')).toBe(
      '{"error": {"class": "GenericError", "desc": "size must be greater than zero"}}\r\n');
    expect(exchange(env, peer, '{"execute": "ringbuf-write", "arguments": {"device": "rb", "data": "!!", "format": "base64"}}')).toBe(
      '{"error": {"class": "GenericError", "desc": "Base64 data contains invalid characters"}}\r\n');
  });

  it('human-monitor-command returns HMP output with \\r\\n and honours cpu-index', () => {
    const { env, peer } = negotiated({ cpus: 2 });
    expect(exchange(env, peer, '{"execute": "human-monitor-command", "arguments": {"command-line": "info cpus", "cpu-index": 1}}'))
      .toBe('{"return": "  CPU #0: thread_id=4242\\r\\n* CPU #1: thread_id=4243\\r\\n"}\r\n');
    expect(exchange(env, peer, '{"execute": "human-monitor-command", "arguments": {"command-line": "p 1+2*3"}}')).toBe('{"return": "0x7\\r\\n"}\r\n');
  });

  it('query-commands, query-version, query-name, query-chardev, query-cpus-fast', () => {
    const { env, peer } = negotiated({ name: 'vm1', ringbufs: { rb: 8 } });
    const cmds = exchange(env, peer, '{"execute": "query-commands"}');
    expect(cmds.startsWith('{"return": [{"name": "human-monitor-command"}, {"name": "ringbuf-read"}')).toBe(true);
    expect(cmds).toContain('{"name": "qmp_capabilities"}]}');
    expect(exchange(env, peer, '{"execute": "query-version"}')).toBe(
      '{"return": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "detvm 0.1.0"}}\r\n');
    expect(exchange(env, peer, '{"execute": "query-name"}')).toBe('{"return": {"name": "vm1"}}\r\n');
    expect(exchange(env, peer, '{"execute": "query-chardev"}')).toBe(
      '{"return": [{"frontend-open": false, "filename": "ringbuf", "label": "rb"}]}\r\n');
    expect(exchange(env, peer, '{"execute": "query-cpus-fast"}')).toBe(
      '{"return": [{"thread-id": 4242, "props": {"core-id": 0}, "qom-path": "/machine/soc0/harts[0]", "cpu-index": 0, "target": "riscv32"}]}\r\n');
  });

  it('cont after a shutdown needs a reset', () => {
    const { env, peer } = negotiated();
    env.fm.state.runstate = 'shutdown';
    expect(exchange(env, peer, '{"execute": "cont"}')).toBe(
      '{"error": {"class": "GenericError", "desc": "Resetting the Virtual Machine is required"}}\r\n');
    env.fm.state.runstate = 'inmigrate';
    expect(exchange(env, peer, '{"execute": "cont"}')).toBe('{"return": {}}\r\n');
    expect(env.fm.state.autostart).toBe(true);
    env.fm.state.runstate = 'finish-migrate';
    expect(exchange(env, peer, '{"execute": "cont"}')).toContain('Migration is not finalized yet');
  });
});

describe('QMP request queue and suspension', () => {
  it('without oob reads nothing more until the response is out', () => {
    const { env, peer, mon } = negotiated();
    fakePeerSend(peer, '{"execute": "query-name"}{"execute": "query-name"}');
    // Read up to the end of the first object, then the monitor is suspended.
    for (let i = 0; i < 40 && mon.suspendCnt === 0; i++) loopStep(env.fm.m);
    expect(mon.suspendCnt).toBe(1);
    expect(peer.input.length).toBe(25);
    runUntilIdle(env);
    expect(fakePeerTake(peer)).toBe('{"return": {}}\r\n{"return": {}}\r\n');
  });

  it('with oob queues up to 8 requests and runs exec-oob at once', () => {
    const env = monitorEnvCreate();
    const q = qmpOnPeer(env);
    runUntilIdle(env);
    exchange(env, q.peer, '{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}');
    fakePeerTake(q.peer);
    fakePeerSend(q.peer, '{"execute": "query-name", "id": 1}'.repeat(3) + '{"exec-oob": "query-name", "id": "o"}');
    runUntilIdle(env);
    expect(fakePeerTake(q.peer)).toBe('{"return": {}, "id": 1}\r\n'.repeat(3)
      + '{"id": "o", "error": {"class": "GenericError", "desc": "The command query-name does not support OOB"}}\r\n');
  });

  it('drops queued requests on disconnect and greets again on reconnect', () => {
    const { env, peer, mon } = negotiated();
    fakePeerDisconnect(peer);
    runUntilIdle(env);
    expect(mon.suspendCnt).toBe(0);
    fakePeerConnect(peer);
    runUntilIdle(env);
    expect(fakePeerTake(peer)).toMatch(/^\{"QMP": /);
    expect(exchange(env, peer, '{"execute": "query-name"}')).toContain('Expecting capabilities negotiation');
  });
});

describe('QMP events', () => {
  it('go to negotiated monitors only, in mon_list order, with HOST-clock timestamps', () => {
    const env = monitorEnvCreate();
    const a = qmpOnPeer(env, 'a');
    const b = qmpOnPeer(env, 'b');
    const c = qmpOnPeer(env, 'c');
    runUntilIdle(env);
    // monitor_list_append inserts at the head: newest first.
    expect(env.mons.list.map((x) => x.chr.chr!.label)).toEqual(['c', 'b', 'a']);
    exchange(env, a.peer, '{"execute": "qmp_capabilities"}');
    exchange(env, b.peer, '{"execute": "qmp_capabilities"}');
    fakePeerTake(c.peer);
    const order: string[] = [];
    for (const p of [a.peer, b.peer]) {
      const orig = p.chr.driver.write;
      p.chr.driver.write = (chr, buf) => { order.push(p.chr.label); return orig(chr, buf); };
    }
    // The dispatcher moved a, then b, to the tail when it served their qmp_capabilities.
    expect(env.mons.list.map((x) => x.chr.chr!.label)).toEqual(['c', 'a', 'b']);
    notifierListNotify(env.fm.m.qapiEvents, { event: 'POWERDOWN' });
    expect(order).toEqual(['a', 'b']);
    expect(fakePeerTake(c.peer)).toBe('');
    const text = fakePeerTake(a.peer);
    const ns = env.fm.m.clocks;
    expect(text).toMatch(/^\{"timestamp": \{"seconds": \d+, "microseconds": \d+\}, "event": "POWERDOWN"\}\r\n$/);
    expect(ns.mode).toBe('virtual');
  });

  it('STOP comes before the return of stop; RESET before the return of system_reset', () => {
    const { env, peer } = negotiated();
    expect(ev(exchange(env, peer, '{"execute": "stop"}'))).toBe(
      '{"timestamp": {"seconds": <S>, "microseconds": <US>}, "event": "STOP"}\r\n{"return": {}}\r\n');
    expect(ev(exchange(env, peer, '{"execute": "system_reset"}'))).toBe(
      '{"timestamp": {"seconds": <S>, "microseconds": <US>}, "event": "RESET", "data": {"guest": false, "reason": "host-qmp-system-reset"}}\r\n{"return": {}}\r\n');
  });

  it('rate-limits throttled events to one per second, keeping the last', () => {
    const { env, peer } = negotiated();
    const send = (n: number): void => notifierListNotify(env.fm.m.qapiEvents, { event: 'RTC_CHANGE', data: { offset: n } });
    send(1);
    send(2);
    send(3);
    expect(fakePeerTake(peer)).toContain('"offset": 1');
    runFor(env.fm.m, 999_000_000);
    expect(fakePeerTake(peer)).toBe('');
    runFor(env.fm.m, 2_000_000);
    const t = fakePeerTake(peer);
    expect(t).toContain('"offset": 3');
    expect(t).not.toContain('"offset": 2');
    runFor(env.fm.m, 2_000_000_000);
    expect(env.mons.events.rate.size).toBe(0);
  });

  it('HMP stop raises STOP on QMP', () => {
    const env = monitorEnvCreate();
    const q = qmpOnPeer(env, 'q');
    const h = hmpOnPeer(env, 'h');
    runUntilIdle(env);
    exchange(env, q.peer, '{"execute": "qmp_capabilities"}');
    exchange(env, h.peer, 'stop\n');
    expect(ev(fakePeerTake(q.peer))).toBe('{"timestamp": {"seconds": <S>, "microseconds": <US>}, "event": "STOP"}\r\n');
  });
});

describe('QMP dispatcher', () => {
  it('serves monitors round-robin, one request each in turn', () => {
    const env = monitorEnvCreate();
    const a = qmpOnPeer(env, 'a');
    const b = qmpOnPeer(env, 'b');
    runUntilIdle(env);
    for (const p of [a.peer, b.peer]) {
      exchange(env, p, '{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}');
    }
    const log: string[] = [];
    for (const p of [a.peer, b.peer]) {
      const orig = p.chr.driver.write;
      p.chr.driver.write = (chr, buf) => { log.push(p.chr.label); return orig(chr, buf); };
    }
    fakePeerSend(a.peer, '{"execute": "query-name"}'.repeat(3));
    fakePeerSend(b.peer, '{"execute": "query-name"}'.repeat(3));
    runUntilIdle(env);
    expect(log.join('')).toMatch(/^(ab|ba){3}$/);
  });
});


describe('QMP limits through the monitor', () => {
  it('a 64 MiB JSON token gets "JSON token size limit exceeded", then the monitor answers again', () => {
    const { env, peer, mon } = negotiated();
    const read = (buf: Uint8Array): void => mon.chr.chrRead!(mon.chr.opaque, buf);
    read(Uint8Array.from([0x7b, 0x22])); // {"
    const chunk = new Uint8Array(1 << 20).fill(0x78);
    for (let i = 0; i < 64; i++) read(chunk);
    runUntilIdle(env);
    expect(fakePeerTake(peer)).toBe('{"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}}\r\n');
    expect(exchange(env, peer, '\xff\n{"execute": "query-name", "id": 1}')).toContain('{"return": {}, "id": 1}\r\n');
  }, 60_000);
});

describe('QMP trace', () => {
  it('traces monitor_qmp_read > handle_qmp_command, then monitor_qmp_dispatch > qmp_dispatch and qmp_stop', () => {
    const env = monitorEnvCreate();
    env.fm.m.trace.level = 1;
    const q = qmpOnPeer(env);
    runUntilIdle(env);
    exchange(env, q.peer, '{"execute": "qmp_capabilities"}');
    env.fm.m.trace.records = [];
    exchange(env, q.peer, '{"execute": "stop"}');
    const names = (env.fm.m.trace.records ?? []).filter((r) => r.kind === 'enter').map((r) => r.name);
    const want = ['monitor_qmp_read', 'handle_qmp_command', 'monitor_qmp_dispatch', 'qmp_dispatch', 'do_qmp_dispatch_bh', 'qmp_stop'];
    let at = 0;
    for (const n of names) if (n === want[at]) at++;
    expect(at).toBe(want.length);
  });
});
