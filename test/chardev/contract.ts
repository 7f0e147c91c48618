// The Chardev contract every backend honours (spec §2.1, §2.2), as one suite run per backend:
// registry and query-chardev, fe_init and "Device '%s' is in use", late OPENED, writes reaching
// the outside, deinit, output watches, and read-side flow control (nothing taken while the
// frontend cannot read; at most min(4096, can_read) bytes and one read call per dispatch).
// Method: virtual-mode machines, in-memory peers/terminals, exact byte and call counts.

import { describe, expect, it } from 'vitest';
import {
  type Chardev, qemuChrFeAddWatch, qemuChrFeDeinit, qemuChrFeWrite, qemuChrFeWriteAll, qemuChrFind,
  qmpQueryChardev,
} from '../../core/char/index.ts';
import { type LoopMachine, G_IO_OUT } from '../../core/loop/index.ts';
import {
  bytes, spin, spinUntil, testFrontendAttach, testFrontendSetCanRead,
} from '../support/chardev-frontend.ts';

export interface ContractHarness {
  m: LoopMachine;
  chr: Chardev;
  /** Make bytes available to the backend's input (null: the backend has no input). */
  feed: ((data: Uint8Array) => void) | null;
  /** Everything the backend has put out so far (null: output is not observable). */
  output: (() => Uint8Array) | null;
  /** How many frontends may attach (1, or 4 for a mux). */
  maxFrontends: number;
  /** Bring the backend to its open state after a frontend attached (connect a peer...). */
  open?: () => void;
}

/** Run the chardev contract against the backend `make()` creates (a fresh one per test). */
export function runChardevContract(name: string, make: () => ContractHarness): void {
  describe(`chardev contract: ${name}`, () => {
    it('is found by label and listed by query-chardev with frontend-open', () => {
      const h = make();
      expect(qemuChrFind(h.m, h.chr.label)).toBe(h.chr);
      const before = qmpQueryChardev(h.m).find((i) => i.label === h.chr.label)!;
      expect(before.filename).toBe(h.chr.filename);
      expect(before['frontend-open']).toBe(false);
      testFrontendAttach(h.chr);
      const after = qmpQueryChardev(h.m).find((i) => i.label === h.chr.label)!;
      expect(after['frontend-open']).toBe(true);
    });

    it(`takes its number of frontends, then "Device '%s' is in use"`, () => {
      const h = make();
      for (let i = 0; i < h.maxFrontends; i++) testFrontendAttach(h.chr, `fe${i}`);
      expect(() => testFrontendAttach(h.chr, 'extra')).toThrow(`Device '${h.chr.label}' is in use`);
    });

    it('sends OPENED to a frontend that attaches to an open backend, once; none otherwise', () => {
      const h = make();
      const wasOpen = h.chr.beOpen;
      const fe = testFrontendAttach(h.chr);
      expect(fe.events.filter((e) => e === 'OPENED').length).toBe(wasOpen ? 1 : 0);
      spin(h.m, 3);
      expect(fe.events.filter((e) => e === 'OPENED').length).toBe(wasOpen ? 1 : 0);
    });

    it('writes reach the outside world, in order; write_all writes everything', () => {
      const h = make();
      const fe = testFrontendAttach(h.chr);
      h.open?.();
      spin(h.m, 3);
      const a = qemuChrFeWrite(fe.be, bytes('hello '));
      const b = qemuChrFeWriteAll(fe.be, bytes('world'));
      expect(a).toBe(6);
      expect(b).toBe(5);
      spin(h.m, 3);
      if (h.output) expect(Buffer.from(h.output()).toString('latin1')).toContain('hello world');
    });

    it('detaches with deinit: no more events, writes through the old frontend do nothing', () => {
      const h = make();
      const fe = testFrontendAttach(h.chr);
      qemuChrFeDeinit(fe.be);
      expect(fe.be.chr).toBe(null);
      const n = fe.log.length;
      expect(qemuChrFeWrite(fe.be, bytes('x'))).toBe(0);
      h.open?.();
      spin(h.m, 3);
      expect(fe.log.length).toBe(n);
      expect(qmpQueryChardev(h.m).find((i) => i.label === h.chr.label)!['frontend-open']).toBe(false);
    });

    it('add_watch returns a tag; a watch for G_IO_OUT fires once the backend is writable', () => {
      const h = make();
      const fe = testFrontendAttach(h.chr);
      h.open?.();
      spin(h.m, 3);
      let fired = 0;
      const tag = qemuChrFeAddWatch(fe.be, G_IO_OUT, () => {
        fired++;
        return false;
      });
      expect(tag).toBeGreaterThanOrEqual(0);
      spin(h.m, 3);
      expect(fired).toBe(tag > 0 ? 1 : 0);
    });

    it('takes no input while the frontend cannot read, then at most can_read per call, in order', () => {
      const h = make();
      if (!h.feed) return;
      const fe = testFrontendAttach(h.chr, 'fe', 0);
      h.open?.();
      spin(h.m, 3);
      const data = bytes('0123456789abcdefghij');
      h.feed(data);
      spin(h.m, 10);
      expect(fe.received.length).toBe(0);
      testFrontendSetCanRead(fe, 3);
      spinUntil(h.m, () => fe.received.length >= data.length, 'all input delivered');
      expect(Math.max(...fe.reads)).toBeLessThanOrEqual(3);
      expect(String.fromCharCode(...fe.received)).toBe('0123456789abcdefghij');
    });

    it('reads at most 4096 bytes, with one read call, per main-loop iteration', () => {
      const h = make();
      if (!h.feed) return;
      const fe = testFrontendAttach(h.chr, 'fe', 1 << 20);
      h.open?.();
      spin(h.m, 3);
      // Printable bytes: a mux would take 0x01 (Ctrl-A) as its escape character.
      const big = new Uint8Array(10000).map((_, i) => 0x20 + (i % 90));
      h.feed(big);
      const perIteration: number[] = [];
      spinUntil(h.m, () => {
        perIteration.push(fe.reads.length);
        return fe.received.length >= big.length;
      }, 'big input delivered');
      expect(Math.max(...fe.reads)).toBeLessThanOrEqual(4096);
      for (let i = 1; i < perIteration.length; i++) expect(perIteration[i]! - perIteration[i - 1]!).toBeLessThanOrEqual(1);
      expect(Uint8Array.from(fe.received)).toEqual(big);
    });
  });
}
