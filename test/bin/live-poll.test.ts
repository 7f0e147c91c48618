// The live driver's poll before sleeping (bin/live.ts pollBriefly): Node's event loop runs
// without blocking until a host input arrives, within a bound that never exceeds the loop's own
// timeout. Method: a fake HostIo whose yieldNow counts turns and delivers an input on a chosen
// turn; no real waiting (a zero timeout allows one turn).
import { describe, expect, it } from 'vitest';
import { pollBriefly } from '../../bin/live.ts';
import { loopMachineCreate, hostInputArrived, vfdOpen } from '../../core/loop/index.ts';
import type { HostIo } from '../../core/host/index.ts';

function fakeIo(deliverOnTurn: number, onDeliver: () => void): { io: HostIo; turns: () => number } {
  let turns = 0;
  const io = {
    yieldNow: async (): Promise<void> => {
      turns++;
      if (turns === deliverOnTurn) onDeliver();
    },
  } as unknown as HostIo;
  return { io, turns: () => turns };
}

describe('live driver: poll before sleeping', () => {
  it('returns as soon as an input arrives', async () => {
    const m = loopMachineCreate();
    const fd = vfdOpen(m.fdt, 'sock', 'stream');
    const { io, turns } = fakeIo(3, () => hostInputArrived(m.fdt, { kind: 'data', fd: fd.id, data: new Uint8Array([1]) }));
    expect(await pollBriefly(m, io, -1)).toBe(true);
    expect(turns()).toBe(3);
  });

  it('gives up after one turn when the loop must run at once (timeout 0)', async () => {
    const m = loopMachineCreate();
    const { io, turns } = fakeIo(-1, () => {});
    expect(await pollBriefly(m, io, 0)).toBe(false);
    expect(turns()).toBe(1);
  });
});
