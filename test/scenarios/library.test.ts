// The library API (index.ts): vm.qmp / vm.hmp go through a real QMP monitor, vm.events carries
// QAPI events with wall-clock timestamps from the HOST clock (the -rtc base in virtual mode),
// vm.console captures the serial port, errors are typed, and a QMP client on an in-memory
// socket sees the same timestamps; step, run({ until }), save/load. Method: virtual-mode machines
// running the demo guest.
import { describe, expect, it } from 'vitest';
import { EventEmitter } from 'eventemitter3';
import { createMachine, QmpCommandError, ConfigError, MigrationError } from '../../index.ts';
import { memoryPeerConnect, memoryPeerSend, memoryPeerText } from '../../chardev/index.ts';

describe('library API', () => {
  it('qmp, hmp, events with timestamps, console', () => {
    const vm = createMachine({ kernel: 'guests/bin/demo.elf', rtcBaseSec: 1_800_000_000 });
    const events: string[] = [];
    vm.events.on('event', (e) => events.push(`${e.event}@${e.timestamp.seconds}.${String(e.timestamp.microseconds).padStart(6, '0')}`));
    vm.runFor(1_500_000_000);
    expect(vm.qmp('query-status')).toEqual({ status: 'running', singlestep: false, running: true });
    vm.qmp('stop');
    expect(vm.hmp('info status')).toBe('VM status: paused\r\n');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatch(/^STOP@1800000001\.5\d{5}$/);
    expect(vm.console.text()).toContain('tick 14 hart 0\r\n');
    expect(() => vm.qmp('nosuch')).toThrow(QmpCommandError);
    try {
      vm.qmp('human-monitor-command', {});
    } catch (e) {
      expect((e as QmpCommandError).errorClass).toBe('GenericError');
      expect((e as QmpCommandError).desc).toBe("Parameter 'command-line' is missing");
    }
  });

  it('QMP event timestamps on a socket come from the HOST clock', () => {
    const vm = createMachine({ kernel: 'guests/bin/demo.elf', rtcBaseSec: 1_800_000_000, qmp: ['tcp:127.0.0.1:4445,server=on,wait=off'] });
    const c = memoryPeerConnect(vm.kernel, '127.0.0.1:4445');
    if (!c.ok) throw new Error(c.error);
    vm.runFor(2_000_000_000);
    memoryPeerSend(c.peer, '{"execute":"qmp_capabilities"}{"execute":"stop"}');
    vm.runFor(10_000_000);
    expect(memoryPeerText(c.peer)).toMatch(/\{"timestamp": \{"seconds": 1800000002, "microseconds": \d+\}, "event": "STOP"\}\r\n\{"return": \{\}\}\r\n$/);
  });

  it('configuration errors are ConfigErrors with QEMU texts', () => {
    expect(() => createMachine({ kernel: '/nonexistent.elf' })).toThrow(ConfigError);
    expect(() => createMachine({ kernel: '/nonexistent.elf' })).toThrow("could not load kernel '/nonexistent.elf'");
    expect(() => createMachine({ serial: 'nosuchbackend:x' })).toThrow(/nosuchbackend/);
    expect(() => createMachine({ memory: 'lots' })).toThrow(ConfigError);
  });

  it('step, run({ until }), save/load, events on an eventemitter3 emitter', () => {
    const vm = createMachine({ kernel: 'guests/bin/demo.elf', trace: 1 });
    expect(vm.events).toBeInstanceOf(EventEmitter);
    const recs = vm.step();
    expect(recs[0]).toMatchObject({ kind: 'enter', name: 'main_loop_wait' });
    vm.run({ until: 300_000_000 });
    vm.run({ until: () => vm.console.text().includes('tick 3 hart 0') });
    expect(vm.console.text()).toMatch(/tick 3 hart 0\r\n$/);
    const saved = vm.save();
    vm.run({ until: 500_000_000 });
    expect(vm.console.text()).toContain('tick 8 hart 0');
    vm.load(saved);
    vm.run({ until: () => vm.console.text().endsWith('tick 4 hart 0\r\n') });
    expect(vm.console.text()).toMatch(/tick 8 hart 0\r\ntick 4 hart 0\r\n$/);
    expect(() => vm.load(new Uint8Array([1, 2, 3]))).toThrow(MigrationError);
    // As after a failed loadvm: nothing loaded, the VM waits in restore-vm.
    expect(vm.hmp('info status')).toBe('VM status: paused (restore-vm)\r\n');
  });
});
