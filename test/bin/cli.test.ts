// The detvm command line (bin/cli.ts, bin/main.ts): every option of issue 10 parses into the
// configuration it stands for, and errors carry QEMU 7.2's texts, with the option's location
// where QEMU reports one, and QEMU's exit status. The expected texts were taken from
// qemu-system-riscv32 7.2.22 (`qemu-system-riscv32 -M virt -display none -bios none -kernel K
// OPTION`), with "qemu-system-riscv32" read as "detvm". Method: parseCommandLine is pure, so most
// cases call it; a few spawn bin/detvm.js to check what reaches stderr and the exit status.
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { parseCommandLine, HELP_TEXT, type CliAction } from '../../bin/cli.ts';
import type { MachineConfig } from '../../index.ts';

const root = join(import.meta.dirname, '..', '..');

function config(...argv: string[]): MachineConfig {
  const a = parseCommandLine(argv);
  if (a.kind !== 'run') throw new Error(`expected a run, got ${JSON.stringify(a)}`);
  return a.config;
}

function run(...argv: string[]): Extract<CliAction, { kind: 'run' }> {
  const a = parseCommandLine(argv);
  if (a.kind !== 'run') throw new Error(`expected a run, got ${JSON.stringify(a)}`);
  return a;
}

function error(...argv: string[]): string {
  const a = parseCommandLine(argv);
  if (a.kind !== 'error') throw new Error(`expected an error, got ${JSON.stringify(a)}`);
  expect(a.status).toBe(1);
  return a.message;
}

describe('detvm options', () => {
  it('machine, CPU, harts, memory, kernel, firmware, name', () => {
    const c = config('-M', 'virt', '-cpu', 'rv32', '-smp', '2', '-m', '64M', '-kernel', 'k.elf', '-bios', 'none', '-name', 'guest=vm1,debug-threads=on');
    expect(c).toMatchObject({ smp: 2, memory: '64M', kernel: 'k.elf', name: 'vm1' });
    expect(config('-machine', 'virt,aclint=off', '-smp', 'cpus=3,sockets=1,cores=3', '-m', 'size=1G').smp).toBe(3);
    expect(config('-m', 'size=1G').memory).toBe('1G');
    expect(config('--smp', '4').smp).toBe(4); // a double dash is accepted, as by QEMU
    expect(config('-accel', 'tcg,thread=single').smp).toBeUndefined();
  });

  it('-serial, -monitor, -qmp, -qmp-pretty, -chardev, -mon', () => {
    const c = config(
      '-chardev', 'socket,id=c0,host=127.0.0.1,port=4446,server=on,wait=off', '-mon', 'chardev=c0,mode=control,pretty=on',
      '-serial', 'stdio', '-monitor', 'tcp:127.0.0.1:4444,server=on,wait=off', '-qmp', 'unix:/tmp/q,server=on,wait=off',
      '-qmp-pretty', 'tcp:127.0.0.1:4445,server=on,wait=off',
    );
    expect(c.chardevs).toEqual(['socket,id=c0,host=127.0.0.1,port=4446,server=on,wait=off']);
    expect(c.mons).toEqual(['chardev=c0,mode=control,pretty=on']);
    expect(c.serial).toBe('stdio');
    expect(c.monitors).toEqual(['tcp:127.0.0.1:4444,server=on,wait=off']);
    expect(c.qmp).toEqual(['unix:/tmp/q,server=on,wait=off']);
    expect(c.qmpPretty).toEqual(['tcp:127.0.0.1:4445,server=on,wait=off']);
    expect(config('-serial', 'none').serial).toBeNull();
    expect(config().serial).toBeNull(); // no -serial, no -nographic: nothing on the terminal
  });

  it('-nographic multiplexes serial and monitor on stdio unless a monitor is elsewhere; -display none', () => {
    expect(config('-nographic').serial).toBe('mon:stdio');
    expect(config('-nographic', '-monitor', 'tcp:127.0.0.1:4444,server=on,wait=off').serial).toBe('stdio');
    // As qemu-system-riscv32 7.2: -qmp and -mon also clear default_monitor; -monitor none is no monitor.
    expect(config('-nographic', '-qmp', 'tcp:127.0.0.1:4445,server=on,wait=off').serial).toBe('stdio');
    expect(config('-nographic', '-chardev', 'null,id=n', '-mon', 'chardev=n').serial).toBe('stdio');
    expect(config('-nographic', '-monitor', 'none').serial).toBe('stdio');
    expect(config('-nographic', '-monitor', 'none').monitors).toBeUndefined();
    expect(config('-nographic', '-serial', 'null').serial).toBe('null');
    expect(config('-display', 'none').serial).toBeNull();
  });

  it('-S, -no-shutdown, -no-reboot, -action', () => {
    expect(config('-S', '-no-shutdown', '-no-reboot')).toMatchObject({ startPaused: true, noShutdown: true, rebootShutdown: true });
    expect(config('-action', 'shutdown=pause,reboot=shutdown,panic=none')).toMatchObject({ noShutdown: true, rebootShutdown: true });
    expect(config('-no-shutdown', '-action', 'shutdown=poweroff').noShutdown).toBe(false);
  });

  it('-incoming, -drive, -device, -loadvm, -snapshot', () => {
    const c = config(
      '-incoming', 'tcp:127.0.0.1:4447', '-drive', 'if=none,file=d.qcow2,format=qcow2,id=d0',
      '-device', 'virtio-blk-device,drive=d0', '-loadvm', 's1', '-snapshot',
    );
    expect(c).toMatchObject({ incoming: 'tcp:127.0.0.1:4447', drives: ['if=none,file=d.qcow2,format=qcow2,id=d0'], devices: ['virtio-blk-device,drive=d0'], loadvm: 's1' });
    expect(config('-incoming', 'defer').incoming).toBe('defer');
  });

  it('-icount shift, and rr=record|replay with rrfile and rrsnapshot', () => {
    expect(config('-icount', 'shift=3,align=off,sleep=off').icountShift).toBe(3);
    expect(config('-icount', '5').icountShift).toBe(5);
    expect(config('-icount', 'shift=0,rr=record,rrfile=run.log,rrsnapshot=init').record).toEqual({ file: 'run.log', snapshot: 'init' });
    expect(config('-icount', 'shift=0,rr=replay,rrfile=run.log').replay).toEqual({ log: 'run.log' });
  });

  it('-rtc base, -seed, -clock, tracing options', () => {
    expect(config('-rtc', 'base=2026-01-01T00:00:00,clock=vm,driftfix=none').rtcBaseSec).toBe(Date.UTC(2026, 0, 1) / 1000);
    expect(config('-rtc', 'base=2006-06-17').rtcBaseSec).toBe(Date.UTC(2006, 5, 17) / 1000);
    expect(config('-rtc', 'base=utc').rtcBaseSec).toBeUndefined();
    expect(config('-seed', '4294967295').seed).toBe(4294967295);
    const live = run();
    expect(live.live).toBe(true);
    expect(live.config.clock).toBe('live');
    const v = run('-clock', 'virtual');
    expect(v.live).toBe(false);
    const t = run('-dtrace-file', 't.json', '-dtrace-format', 'chrome');
    expect(t).toMatchObject({ traceFile: 't.json', traceFormat: 'chrome' });
    expect(t.config.trace).toBe(1); // -dtrace-file implies level 1
    expect(run('-dtrace', '2').config.trace).toBe(2);
  });

  it('-version, -h, -help, -M help', () => {
    expect(parseCommandLine(['-version'])).toEqual({ kind: 'version' });
    expect(parseCommandLine(['-h'])).toEqual({ kind: 'help' });
    expect(parseCommandLine(['--help'])).toEqual({ kind: 'help' });
    const h = parseCommandLine(['-M', 'help']);
    expect(h).toMatchObject({ kind: 'error', status: 0 });
  });

  it('the help text names every option', () => {
    for (const opt of [
      '-M virt', '-cpu', '-smp', '-m SIZE', '-kernel', '-bios none', '-serial', '-monitor', '-qmp', '-qmp-pretty', '-chardev',
      '-mon chardev=', '-nographic', '-display none', '-S ', '-no-shutdown', '-action', '-incoming', '-icount', '-drive', '-device',
      '-loadvm', '-name', '-rtc base=', '-seed', '-clock', '-dtrace', '-dtrace-file', '-dtrace-format', '-version', '-h',
    ]) {
      expect(HELP_TEXT, opt).toContain(opt);
    }
  });
});

describe('errors with QEMU 7.2 texts', () => {
  it.each([
    [['-foo'], '-foo: invalid option'],
    [['--foo'], '--foo: invalid option'],
    [['-smp'], '-smp: requires an argument'],
    [['-name'], '-name: requires an argument'],
    [['-qmp'], '-qmp: requires an argument'],
    [['-M', 'foo'], 'unsupported machine type\nUse -machine help to list supported machines'],
    [['-cpu', 'foo'], "unable to find CPU model 'foo'"],
    [['-smp', 'x'], "Parameter 'smp.cpus' expects integer"],
    [['-smp', 'cpus=x'], "Parameter 'smp.cpus' expects integer"],
    [['-smp', '2,cpus=x'], "Parameter 'smp.cpus' expects integer"],
    [['-smp', 'cpus=2,sockets=x'], "Parameter 'smp.sockets' expects integer"],
    [['-smp', '2,foo=1'], "Parameter 'smp.foo' is unexpected"],
    [['-m', 'lots'], "-m lots: Parameter 'size' expects a non-negative number below 2^64\nOptional suffix k, M, G, T, P or E means kilo-, mega-, giga-, tera-, peta-\nand exabytes, respectively."],
    [['-icount', 'shift=11'], '-icount shift=11: icount: Invalid shift value'],
    [['-icount', 'rr=foo'], '-icount rr=foo: Invalid icount rr option: foo'],
    [['-icount', 'rr=record'], '-icount rr=record: File name not specified for replay'],
    [['-icount', 'foo=1'], "-icount foo=1: Invalid parameter 'foo'"],
    [['-action', 'shutdown=x'], "-action shutdown=x: Parameter 'shutdown' does not accept value 'x'"],
    [['-action', 'foo=1'], "-action foo=1: Invalid parameter 'foo'"],
    [['-rtc', 'base=garbage'], "invalid datetime format\nvalid formats: '2006-06-17T16:01:21' or '2006-06-17'"],
    [['-rtc', 'clock=foo'], "invalid option value 'foo'"],
    [['-rtc', 'foo=1'], "-rtc foo=1: Invalid parameter 'foo'"],
    [['-display', 'foo'], "-display foo: Parameter 'type' does not accept value 'foo'"],
    [['-mon', 'chardev=x,mode=bad'], "-mon chardev=x,mode=bad: Parameter 'mode' does not accept value 'bad'"],
    [['-mon', 'chardev=x,pretty=maybe'], "-mon chardev=x,pretty=maybe: Parameter 'pretty' expects 'on' or 'off'"],
    [['-accel', 'kvm'], '-accel kvm: invalid accelerator kvm'],
    [['-bios', 'foo'], 'Unable to load the RISC-V firmware "foo"'],
  ])('%j', (argv, text) => {
    expect(error(...argv)).toBe(text);
  });

  it("detvm's own options: their values are checked", () => {
    expect(error('-seed', 'x')).toBe("-seed: 'x' is not a number from 0 to 4294967295");
    expect(error('-clock', 'fast')).toBe("-clock: 'fast' is not 'virtual' or 'live'");
    expect(error('-dtrace', '3')).toBe("-dtrace: level '3' is not 0, 1 or 2");
    expect(error('-dtrace-format', 'xml')).toBe("-dtrace-format: 'xml' is not jsonl, tree or chrome");
    expect(error('-icount', 'shift=auto')).toMatch(/^-icount shift=auto: icount: shift=auto is not supported by detvm/);
  });
});

/** Spawn the executable; its stderr and exit status. */
function detvm(...argv: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(root, 'bin/detvm.js'), ...argv], { cwd: root, encoding: 'utf8', timeout: 30_000, input: '' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the executable', () => {
  const K = ['-M', 'virt', '-display', 'none', '-bios', 'none', '-kernel', 'guests/bin/demo.elf'];

  it('an invalid option: one line on stderr, exit status 1, as QEMU', () => {
    expect(detvm(...K, '-foo')).toEqual({ status: 1, stdout: '', stderr: 'detvm: -foo: invalid option\n' });
  });

  it('configuration errors found when the machine is built carry the option location', () => {
    expect(detvm(...K, '-serial', 'foo')).toMatchObject({
      status: 1,
      stderr: "detvm: -serial foo: 'foo' is not a valid char driver\ndetvm: -serial foo: could not connect serial device to character backend 'foo'\n",
    });
    expect(detvm(...K, '-chardev', 'foo,id=x')).toMatchObject({ status: 1, stderr: "detvm: -chardev foo,id=x: 'foo' is not a valid char driver name\n" });
    expect(detvm(...K, '-mon', 'foo')).toMatchObject({ status: 1, stderr: 'detvm: -mon foo: chardev "foo" not found\n' });
    expect(detvm(...K, '-device', 'foo')).toMatchObject({ status: 1, stderr: "detvm: -device foo: 'foo' is not a valid device model name\n" });
    expect(detvm(...K, '-incoming', 'foo')).toMatchObject({ status: 1, stderr: 'detvm: -incoming foo: unknown migration protocol: foo\n' });
    expect(detvm(...K, '-loadvm', 's1')).toMatchObject({ status: 1, stderr: 'detvm: no block device can store vmstate for snapshot\n' });
    expect(detvm('-M', 'virt', '-kernel', '/nonexistent')).toMatchObject({ status: 1, stderr: "detvm: could not load kernel '/nonexistent'\n" });
  });

  it('-version and -h print on stdout and exit 0', () => {
    const v = detvm('-version');
    expect(v.status).toBe(0);
    expect(v.stdout).toMatch(/^QEMU emulator version 7\.2\.22 \(detvm \d+\.\d+\.\d+\)\n/);
    const h = detvm('-h');
    expect(h.status).toBe(0);
    expect(h.stdout).toBe(HELP_TEXT);
  });

  it('-clock virtual runs the configuration in simulated time, as long as DETVM_VIRTUAL_RUN_NS says', () => {
    const r = spawnSync(process.execPath, [join(root, 'bin/detvm.js'), ...K, '-clock', 'virtual', '-serial', 'stdio', '-no-reboot'], {
      cwd: root, encoding: 'utf8', timeout: 30_000, input: '', env: { ...process.env, DETVM_VIRTUAL_RUN_NS: '300000000' },
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('tick 2 hart 0');
  });
});
