// A busy guest's monitor stays responsive in live mode. QEMU's main loop reads a QMP command a
// byte per iteration while the vCPU threads run on; detvm takes turns, so while a chardev still
// has input (and while a BH waits) the live vCPU turn is short. Without that, every byte of a
// command costs a full 500,000-instruction slice (about 13 M instructions, 12 ms, per command).
// Method: a live-mode machine on a fake host clock running `j .`, a QMP client on the in-memory
// network, input delivered as the host would; count guest instructions until the reply.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMachine } from '../../../index.ts';
import { hostInputArrived, loopStep, type HostClockSource } from '../../../core/loop/index.ts';
import { memoryIoCreate, memoryPeerConnect, memoryPeerText } from '../../../chardev/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'detvm-spin-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('live mode: QMP answers a busy guest quickly', () => {
  it('query-status costs well under a million guest instructions', () => {
    const spin = join(dir, 'spin.bin');
    writeFileSync(spin, new Uint8Array([0x6f, 0x00, 0x00, 0x00])); // j .
    let hostNs = 0;
    const clock: HostClockSource = { monotonicNs: () => hostNs, realtimeNs: () => hostNs, baseSec: 1_767_225_600 };
    const vm = createMachine({
      kernel: spin, memory: '16M', clock: 'live', serial: null, qmp: ['tcp:127.0.0.1:4444,server=on,wait=off'],
      host: { clock, io: (m) => memoryIoCreate(m) },
    });
    const m = vm.kernel;
    const c = memoryPeerConnect(m, 'tcp:127.0.0.1:4444');
    if (!c.ok) throw new Error(c.error);
    const peer = c.peer;
    const step = (): void => {
      loopStep(m);
      hostNs += 100_000;
    };
    const send = (line: string): void => hostInputArrived(m.fdt, { kind: 'data', fd: peer.fd.id, data: new TextEncoder().encode(line) });
    const until = (text: string): void => {
      for (let i = 0; !memoryPeerText(peer).includes(text); i++) {
        if (i > 10_000) throw new Error(`no '${text}' after 10,000 iterations`);
        step();
      }
    };
    until('"QMP"');
    send('{"execute":"qmp_capabilities"}\n');
    until('"return"');
    for (let i = 0; i < 20; i++) step(); // the guest spins on
    const before = m.clocks.icount;
    send('{"execute":"query-status"}\n');
    until('"status": "running"');
    const cost = m.clocks.icount - before;
    expect(cost).toBeGreaterThan(0); // the guest did run meanwhile
    expect(cost).toBeLessThan(1_000_000);
    vm.close();
  });
});

// Virtual mode has no slice cap: a guest that arms no timer gets INT32_MAX ns (2^31 instructions)
// per turn. vm.hmp()/vm.qmp() feed a library chardev that the monitor reads a byte per iteration,
// so without the input/BH cap one call ran billions of instructions (seconds of host time).
describe('virtual mode: the library monitor answers a busy guest quickly', () => {
  it('vm.hmp and vm.qmp cost millions of guest instructions, not billions', () => {
    const vm = createMachine({ kernel: { name: 'spin.bin', bytes: new Uint8Array([0x6f, 0x00, 0x00, 0x00]) }, memory: '16M', serial: null });
    const m = vm.kernel;
    let before = m.clocks.icount;
    expect(vm.hmp('info status')).toBe('VM status: running\r\n');
    expect(m.clocks.icount - before).toBeLessThan(5_000_000); // two commands: capabilities, then human-monitor-command
    before = m.clocks.icount;
    expect(vm.qmp('query-status')).toMatchObject({ status: 'running', running: true });
    const cost = m.clocks.icount - before;
    expect(cost).toBeGreaterThan(0); // the guest ran meanwhile
    expect(cost).toBeLessThan(1_000_000);
    vm.close();
  });
});
