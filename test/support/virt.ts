// Test helpers for whole virt machines: a capturing chardev for the UART, programs assembled from
// instruction words into a raw kernel image, and a runner that stops at guest power-off.
import { type Chardev, chardevCreate, qemuChrBeWrite } from '../../core/char/index.ts';
import { type VirtConfig, type VirtMachine, virtMachineCreate, virtMachineDone } from '../../core/machine.ts';
import { runUntil } from '../../core/loop/index.ts';

export interface CaptureChardev {
  chr: Chardev;
  out: number[];
  text(): string;
  /** Deliver input bytes to the frontend now (as a backend read would). */
  input(bytes: string | Uint8Array): void;
}

/** A chardev that records what the frontend writes. */
export function captureChardev(m: VirtMachine | Parameters<typeof chardevCreate>[0], label = 'serial0'): CaptureChardev {
  const out: number[] = [];
  const chr = chardevCreate(m, label, { type: 'capture', write: (_c, buf) => (out.push(...buf), buf.length) }, 'capture');
  return {
    chr, out,
    text: () => Buffer.from(out).toString('latin1'),
    input: (b) => qemuChrBeWrite(chr, typeof b === 'string' ? Buffer.from(b, 'latin1') : b),
  };
}

/** Little-endian bytes of instruction words. */
export function program(words: number[]): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  const dv = new DataView(out.buffer);
  words.forEach((w, i) => dv.setUint32(i * 4, w >>> 0, true));
  return out;
}

/**
 * A virt machine running `kernel` with its UART on a capture chardev. The chardev is created on a
 * throwaway loop first because the machine owns its loop: the capture is re-bound to the machine.
 */
export function virtWithSerial(kernel: Uint8Array, cfg: VirtConfig = {}): { m: VirtMachine; serial: () => string; cap: CaptureChardev } {
  let cap: CaptureChardev | null = null;
  const m = virtMachineCreate({
    ...cfg,
    kernel: { name: 'test.bin', bytes: kernel },
    serialFactory: (vm: VirtMachine) => {
      cap = captureChardev(vm);
      return cap.chr;
    },
  } as VirtConfig);
  virtMachineDone(m);
  return { m, serial: () => cap!.text(), cap: cap! };
}

/** Run until the main loop exits (guest power-off); returns the exit status. */
export function runToExit(m: VirtMachine, maxNs = 10_000_000_000): number {
  runUntil(m, () => m.loop.exitStatus !== null, { maxNs });
  return m.loop.exitStatus!;
}
