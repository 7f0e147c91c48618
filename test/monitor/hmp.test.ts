// HMP over an in-memory chardev with the fake machine: argument parsing for every args_type
// with QEMU's error texts, the expression evaluator, commands of this issue (help, info, x/xp,
// print, ringbuf), completion through the monitor, mux focus, dropped and back-pressured output.

import { describe, expect, it } from 'vitest';
import { CHR_EVENT_MUX_IN, CHR_EVENT_MUX_OUT, qemuChrBeEvent } from '../../core/char/index.ts';
import { type HmpArgs, hmpRegisterCommands, monitorPrintf } from '../../monitor/index.ts';
import { exchange, hmpOnPeer, monitorEnvCreate, runUntilIdle } from '../support/monitor-env.ts';
import { fakePeerConnect, fakePeerDisconnect, fakePeerSend, fakePeerTake } from '../support/monitor-chardev.ts';
import { registerLaterCommandStandIns } from '../support/monitor-later-commands.ts';

/** Run one line; return only the command's output (between the echoed CR LF and the prompt). */
function hmp(opts: Parameters<typeof monitorEnvCreate>[0] = {}) {
  const env = monitorEnvCreate(opts);
  const { peer, mon } = hmpOnPeer(env);
  runUntilIdle(env);
  fakePeerTake(peer);
  const run = (line: string): string => {
    const out = exchange(env, peer, line + '\n');
    const start = out.indexOf('\r\n');
    expect(out.endsWith('(qemu) ')).toBe(true);
    return out.slice(start + 2, out.length - '(qemu) '.length);
  };
  return { env, peer, mon, run };
}

function withEcho(opts: Parameters<typeof monitorEnvCreate>[0] = {}) {
  const h = hmp(opts);
  const seen: HmpArgs[] = [];
  hmpRegisterCommands(h.env.mons, 'main', [
    { name: 'argtest', argsType: 'flag:-f,val:-vs,s:s?,i:i?', params: '', help: 'test', cmd: (_m, _mon, a) => void seen.push(a) },
    { name: 'types', argsType: 'size:o,t:T,b:b,m:M,l:l.,rest:S?', params: '', help: 'test', cmd: (_m, _mon, a) => void seen.push(a) },
    { name: 'bad', argsType: 'x:Z', params: '', help: 'test', cmd: () => {} },
    { name: 'echo', argsType: 'v:l', params: '', help: 'test', cmd: (ms, mon, a) => void monitorPrintf(ms, mon, `${String(a.get('v'))}\n`) },
  ]);
  return { ...h, seen };
}

describe('HMP argument parsing', () => {
  it('parses flags, flag values, quoted strings and optional expressions', () => {
    const h = withEcho();
    expect(h.run('argtest -f -v "a b\\"c" word 0x10+1')).toBe('');
    expect([...h.seen[0]!.entries()]).toEqual([['flag', true], ['val', 'a b"c'], ['s', 'word'], ['i', 17n]]);
    expect(h.run('argtest')).toBe('');
    expect(h.seen[1]!.size).toBe(0);
    expect(h.run('argtest -x')).toBe('argtest: unsupported option -x\r\nTry "help argtest" for more information\r\n');
    expect(h.run('argtest -v')).toBe('argtest: value expected for -v\r\nTry "help argtest" for more information\r\n');
    expect(h.run('argtest s 0x100000000')).toBe("'argtest' has failed: integer is for 32-bit values\r\nTry \"help argtest\" for more information\r\n");
    expect(h.run('argtest s 1 2')).toBe('argtest: extraneous characters at the end of line\r\nTry "help argtest" for more information\r\n');
    expect(h.run('bad')).toBe("bad: unknown type 'Z'\r\nTry \"help bad\" for more information\r\n");
  });

  it('prints quote errors on QEMU stdout, as get_str does', () => {
    const h = withEcho();
    expect(h.run('argtest "abc')).toBe('argtest: string expected\r\nTry "help argtest" for more information\r\n');
    expect(h.run('argtest "a\\qb"')).toBe('argtest: string expected\r\nTry "help argtest" for more information\r\n');
    expect(h.env.fm.state.stdout).toEqual(['unterminated string\n', "unsupported escape code: '\\q'\n"]);
  });

  it('parses sizes, times, booleans, MiB and the optional .l form', () => {
    const h = withEcho();
    expect(h.run('types 2G 10ms on 3 .5 rest of line')).toBe('');
    expect([...h.seen[0]!.entries()]).toEqual([['size', 2n << 30n], ['t', 0.01], ['b', true], ['m', 3n << 20n], ['l', 5n], ['rest', 'rest of line']]);
    expect(h.run('types x')).toBe('invalid size\r\nTry "help types" for more information\r\n');
    expect(h.run('types 1 x')).toBe('Number expected\r\nTry "help types" for more information\r\n');
    expect(h.run('types 1 1h')).toBe('Unknown unit suffix\r\nTry "help types" for more information\r\n');
    expect(h.run('types 1 inf')).toBe('Bad number\r\nTry "help types" for more information\r\n');
    expect(h.run('types 1 1 yes')).toBe("Expected 'on' or 'off'\r\nTry \"help types\" for more information\r\n");
    expect(h.run('types 1 1 off -1')).toBe('enter a positive value\r\nTry "help types" for more information\r\n');
  });

  it('evaluates expressions with QEMU precedence, registers and errors', () => {
    const h = withEcho();
    expect(h.run('echo 1+2*3')).toBe('7\r\n');
    expect(h.run('echo (1+2)*3')).toBe('9\r\n');
    expect(h.run('echo 6|1&3')).toBe('3\r\n'); // & | ^ share a level, left to right
    expect(h.run('echo -7/2')).toBe('-3\r\n');
    expect(h.run("echo 'A'+~0")).toBe('64\r\n');
    expect(h.run('echo 010')).toBe('8\r\n');
    expect(h.run('echo $pc')).toBe('-2147483596\r\n'); // 0x80000034 as target_long
    expect(h.run('echo $sp+4')).toBe('-2147482236\r\n');
    expect(h.run('echo $nope')).toBe('unknown register\r\nTry "help echo" for more information\r\n');
    expect(h.run('echo 1/0')).toBe('division by zero\r\nTry "help echo" for more information\r\n');
    expect(h.run('echo (1')).toBe("')' expected\r\nTry \"help echo\" for more information\r\n");
    expect(h.run('echo 1+')).toBe('unexpected end of expression\r\nTry "help echo" for more information\r\n');
    expect(h.run('echo #')).toBe("invalid char '#' in expression\r\nTry \"help echo\" for more information\r\n");
    expect(h.run("echo 'a")).toBe("missing terminating ' character\r\nTry \"help echo\" for more information\r\n");
    expect(h.run('echo 99999999999999999999')).toBe('number too large\r\nTry "help echo" for more information\r\n');
  });
});

describe('HMP commands', () => {
  it('help lists commands sorted by full name in QEMU format', () => {
    const h = hmp();
    const lines = h.run('help').split('\r\n');
    expect(lines.slice(0, 4)).toEqual([
      'cont|c  -- resume emulation', 'help|? [cmd] -- show the help',
      'info [subcommand] -- show various information about the system state',
      'print|p /fmt expr -- print expression value (use $reg for CPU register access)',
    ]);
    expect(h.run('help info status')).toBe('info status  -- show the current VM status (running|paused)\r\n');
    expect(h.run('help info nope')).toBe("unknown command: 'info nope'\r\n");
    expect(h.run('? p')).toBe('print|p /fmt expr -- print expression value (use $reg for CPU register access)\r\n');
  });

  it('x and xp dump memory in QEMU layout', () => {
    const h = hmp();
    h.env.fm.state.ram.set([0x41, 0x00, 0x0a, 0xff, 0x10, 0x20, 0x30, 0x40], 0);
    expect(h.run('xp /2wx 0x80000000')).toBe('0000000080000000: 0xff0a0041 0x40302010\r\n');
    expect(h.run('x /4bc 0x80000000')).toBe("80000000: 'A' '\\x00' '\\n' '\\xff'\r\n");
    expect(h.run('x /2hd 0x80000002')).toBe('80000002: 65290  8208\r\n'); // width 5, unsigned loads
    expect(h.run('x /1wo 0x80000004')).toBe('80000004: 010014020020\r\n');
    // The last format and size (o, w) persist.
    expect(h.run('x /3 0x80000000')).toBe('80000000: 037702400101 010014020020           0\r\n');
    expect(h.run('x /3hx 0x80000000')).toBe('80000000: 0x0041 0xff0a 0x2010\r\n');
    expect(h.run('x 0x10')).toBe('00000010: Cannot access memory\r\n');
    expect(h.run('x /2q 0')).toBe("invalid char in format: 'q'\r\nTry \"help x\" for more information\r\n");
  });

  it('print formats and ringbuf commands', () => {
    const h = hmp({ ringbufs: { rb: 16 } });
    expect(h.run('p 10')).toBe('0xa\r\n');
    expect(h.run('p/d -1')).toBe('-1\r\n');
    expect(h.run('p/u -1')).toBe('18446744073709551615\r\n');
    expect(h.run('p/o 8')).toBe('010\r\n');
    expect(h.run('p/c 65')).toBe("'A'\r\n");
    expect(h.run('p/x 0')).toBe('0\r\n');
    expect(h.run('ringbuf_write rb "a\\\\b\\r"')).toBe('');
    expect(h.run('ringbuf_read rb 10')).toBe('a\\\\b\\u000D\r\n');
    expect(h.run('ringbuf_read nope 1')).toBe("Error: Device 'nope' not found\r\n");
    expect(h.run('ringbuf_read rb 0')).toBe('Error: size must be greater than zero\r\n');
  });

  it('info registers, cpus, chardev, history, version, name', () => {
    const h = hmp({ cpus: 2, name: 'guest1', ringbufs: { rb: 16 } });
    expect(h.run('info registers 1').startsWith('\r\nCPU#1\r\n V      =   0\r\n pc       80000038\r\n')).toBe(true);
    expect(h.run('info registers 7')).toBe('CPU#7 not available\r\n');
    expect(h.run('info registers -a').match(/CPU#/g)).toHaveLength(2);
    expect(h.run('info cpus')).toBe('* CPU #0: thread_id=4242\r\n  CPU #1: thread_id=4243\r\n');
    expect(h.run('info chardev')).toBe('rb: filename=ringbuf\r\n');
    expect(h.run('info version')).toBe('7.2.22detvm 0.1.0\r\n');
    expect(h.run('info name')).toBe('guest1\r\n');
    expect(h.run('info history')).toBe("0: 'info registers 1'\r\n1: 'info registers 7'\r\n2: 'info registers -a'\r\n"
      + "3: 'info cpus'\r\n4: 'info chardev'\r\n5: 'info version'\r\n6: 'info name'\r\n7: 'info history'\r\n");
  });

  it('cont reports errors with "Error: "', () => {
    const h = hmp();
    h.env.fm.state.runstate = 'internal-error';
    expect(h.run('cont')).toBe('Error: Resetting the Virtual Machine is required\r\n');
  });
});

describe('HMP completion', () => {
  const tab = (h: ReturnType<typeof hmp>, text: string): string => exchange(h.env, h.peer, text + '\t');

  it('completes command names, aliases, info sub-commands, help arguments', () => {
    const h = hmp();
    registerLaterCommandStandIns(h.env.mons);
    expect(tab(h, 'sys')).toBe(`s\x1b[K\x1b[Dsy\x1b[K\x1b[D\x1b[Dsys\x1b[K\x1b[D\x1b[D\x1b[Dsystem_reset \x1b[K`);
    exchange(h.env, h.peer, '\x01\x0b' + '\x7f'.repeat(0));
    const h2 = hmp();
    expect(tab(h2, 'info st')).toContain('info status \x1b[K');
    const h3 = hmp();
    expect(tab(h3, 'help info ver')).toContain('help info version ');
    const h4 = hmp();
    expect(tab(h4, 'c')).toBe(`c\x1b[K\r\nc         cont      \r\n(qemu) c\x1b[K`);
  });

  it('completes snapshot tags and file names through the machine', () => {
    const h = hmp({ snapshotTags: ['snap1', 'snap2', 'other'], files: { '.': [{ name: 'disk.qcow2', isDir: false }, { name: 'dir', isDir: true }] } });
    registerLaterCommandStandIns(h.env.mons);
    expect(tab(h, 'loadvm sn')).toContain('\r\nsnap1     snap2     \r\n(qemu) loadvm snap');
    const h2 = hmp({ files: { 'img/': [{ name: 'a.raw', isDir: false }] } });
    hmpRegisterCommands(h2.env.mons, 'main', [{ name: 'load', argsType: 'f:F', params: 'file', help: 'x', cmd: () => {} }]);
    expect(tab(h2, 'load img/')).toContain('load img/a.raw \x1b[K');
  });
});

describe('HMP monitor core', () => {
  it('drops output while no client is connected and prints the banner on each connect', () => {
    const env = monitorEnvCreate();
    const { peer, mon } = hmpOnPeer(env, 'm', false);
    runUntilIdle(env);
    monitorPrintf(env.mons, mon, 'lost\n');
    expect(fakePeerTake(peer)).toBe('');
    fakePeerConnect(peer);
    runUntilIdle(env);
    expect(fakePeerTake(peer)).toBe("QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) ");
    fakePeerDisconnect(peer);
    fakePeerConnect(peer);
    runUntilIdle(env);
    expect(fakePeerTake(peer)).toBe("QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) ");
  });

  it('keeps unwritten output on a short write and flushes it from the output watch', () => {
    const h = hmp();
    h.peer.writeBudget = 5;
    fakePeerSend(h.peer, 'info version\n');
    runUntilIdle(h.env);
    expect(fakePeerTake(h.peer)).toBe('i\x1b[K\x1b');
    expect(h.mon.outWatch).not.toBe(0);
    h.peer.writeBudget = null;
    runUntilIdle(h.env);
    expect(fakePeerTake(h.peer)).toContain('7.2.22detvm 0.1.0\r\n(qemu) ');
  });

  it('mux focus: MUX_OUT prints a newline and suspends, MUX_IN resumes with a fresh prompt', () => {
    const h = hmp();
    qemuChrBeEvent(h.peer.chr, CHR_EVENT_MUX_OUT);
    expect(fakePeerTake(h.peer)).toBe('\r\n');
    expect(h.mon.suspendCnt).toBe(1);
    h.env.mons.machine.vmStop('paused');
    monitorPrintf(h.env.mons, h.mon, 'held\n');
    expect(fakePeerTake(h.peer)).toBe('');
    qemuChrBeEvent(h.peer.chr, CHR_EVENT_MUX_IN);
    runUntilIdle(h.env);
    expect(fakePeerTake(h.peer)).toBe('held\r\n(qemu) ');
  });

  it('before the first OPENED, mux events only count suspensions and the banner waits', () => {
    const env = monitorEnvCreate();
    const { peer, mon } = hmpOnPeer(env, 'm', false);
    qemuChrBeEvent(peer.chr, CHR_EVENT_MUX_OUT);
    expect(mon.suspendCnt).toBe(1);
    peer.connected = true;
    qemuChrBeEvent(peer.chr, 1);
    expect(fakePeerTake(peer)).toBe('');
    qemuChrBeEvent(peer.chr, CHR_EVENT_MUX_IN);
    runUntilIdle(env);
    expect(fakePeerTake(peer)).toBe("QEMU 7.2.22 monitor - type 'help' for more information\r\n(qemu) ");
  });

  it('quit suspends the monitor and the machine leaves its loop with SHUTDOWN', () => {
    const h = hmp();
    const out = exchange(h.env, h.peer, 'quit\nhelp\n');
    expect(out.endsWith('quit\x1b[K\r\n')).toBe(true);
    expect(h.env.fm.m.loop.exitStatus).toBe(0);
    expect(h.env.fm.state.events).toEqual(['SHUTDOWN']);
  });
});

describe('HMP trace', () => {
  it('traces monitor_read > readline_handle_byte > monitor_command_cb > handle_hmp_command > hmp_stop', () => {
    const h = hmp();
    h.env.fm.m.trace.level = 1;
    h.env.fm.m.trace.records = [];
    exchange(h.env, h.peer, 'stop\n');
    const recs = h.env.fm.m.trace.records ?? [];
    const i = recs.findIndex((r) => r.kind === 'enter' && r.name === 'hmp_stop');
    expect(i).toBeGreaterThan(0);
    const stack: string[] = [];
    for (const r of recs.slice(0, i)) {
      if (r.kind === 'enter') stack.push(r.name);
      else if (r.kind === 'exit') stack.pop();
    }
    expect(stack.filter((n) => ['monitor_read', 'readline_handle_byte', 'monitor_command_cb', 'handle_hmp_command'].includes(n)))
      .toEqual(['monitor_read', 'readline_handle_byte', 'monitor_command_cb', 'handle_hmp_command']);
  });
});
