// The chardev part of MonitorMachine over the real chardev layer (chardev/, core/char registry):
// query-chardev data, and ring buffer lookup, write and read with QEMU's error texts. The
// composition root spreads this into its MonitorMachine.

import type { LoopMachine } from '../core/loop/index.ts';
import { charState, qemuChrFind } from '../core/char/index.ts';
import { chardevIsRingbuf, ringbufChrRead, ringbufChrWrite, ringbufCount } from '../chardev/index.ts';
import type { MonitorChardevInfo, MonitorMachine } from './machine.ts';

export type ChardevBindings = Pick<MonitorMachine, 'chardevs' | 'ringbufLookup' | 'ringbufWrite' | 'ringbufRead'>;

/**
 * Bind the monitor's chardev queries to `m`'s chardev registry. query-chardev lists chardevs in
 * creation order (QEMU walks a QOM hash table; see docs for the difference).
 */
export function chardevMonitorBindings(m: LoopMachine): ChardevBindings {
  const ring = (device: string): ReturnType<typeof qemuChrFind> => {
    const chr = qemuChrFind(m, device);
    return chr && chardevIsRingbuf(chr) ? chr : null;
  };
  return {
    chardevs: (): MonitorChardevInfo[] => [...charState(m).chardevs.values()].map((chr) => ({
      label: chr.label, filename: chr.filename, frontendOpen: chr.be !== null && chr.be.feOpen,
    })),
    ringbufLookup: (device) => {
      const chr = qemuChrFind(m, device);
      if (!chr) return `Device '${device}' not found`;
      return chardevIsRingbuf(chr) ? null : `${device} is not a ringbuf device`;
    },
    ringbufWrite: (device, data) => {
      const chr = ring(device);
      return chr !== null && ringbufChrWrite(chr, data) >= 0;
    },
    ringbufRead: (device, size) => {
      const chr = ring(device);
      return chr === null ? new Uint8Array(0) : ringbufChrRead(chr, Math.min(size, ringbufCount(chr)));
    },
  };
}
