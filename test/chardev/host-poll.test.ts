// HostIo.pollEvent, the live driver's poll before sleeping: Node's event loop runs without
// blocking until a host input waits or wake() is called, within a wall-time bound (at least one
// turn). Method: a real host I/O of a loop machine; inputs and wakes are injected from
// setImmediate callbacks, so nothing waits on real time (the bounded cases use a 0 limit).
import { afterEach, describe, expect, it } from 'vitest';
import { hostIoCreate, type HostIo } from '../../core/host/index.ts';
import { hostInputArrived, loopMachineCreate, vfdOpen } from '../../core/loop/index.ts';

let io: HostIo | null = null;
afterEach(() => {
  io?.close();
  io = null;
});

describe('host I/O: poll before sleeping', () => {
  it('returns true once a host input waits', async () => {
    const m = loopMachineCreate();
    io = hostIoCreate(m);
    const fd = vfdOpen(m.fdt, 'sock', 'stream');
    setImmediate(() => setImmediate(() => hostInputArrived(m.fdt, { kind: 'data', fd: fd.id, data: new Uint8Array([1]) })));
    expect(await io.pollEvent(60e9)).toBe(true);
  });

  it('returns true on wake(), which would otherwise be lost while the driver is not waiting', async () => {
    const m = loopMachineCreate();
    io = hostIoCreate(m);
    const h = io;
    setImmediate(() => h.wake());
    expect(await io.pollEvent(60e9)).toBe(true);
  });

  it('returns false after one turn when the limit is 0 and nothing came', async () => {
    const m = loopMachineCreate();
    io = hostIoCreate(m);
    let turns = 0;
    const count = (): void => {
      turns++;
      if (turns < 100) setImmediate(count);
    };
    setImmediate(count);
    expect(await io.pollEvent(0)).toBe(false);
    expect(turns).toBe(1);
  });
});
