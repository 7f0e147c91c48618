// A chardev for programs that embed detvm: what the frontend writes goes to a callback, and
// input given with libraryChardevSend is delivered through qemu_chr_be_write with the same
// read-side flow control as a socket (only while the frontend can read, at most
// min(4096, can_read) bytes per dispatch). The library's capture serial and its internal QMP
// client use it. Invariant: queued input is delivered in order and never dropped.

import {
  type Chardev, type ChardevDriver, CHR_READ_BUF_LEN, chardevCreate, chardevRegister, qemuChrBeCanWrite,
  qemuChrBeWrite,
} from '../core/char/index.ts';
import { type LoopMachine, type LoopSource, G_PRIORITY_DEFAULT, gSourceAttach } from '../core/loop/index.ts';

interface LibraryChardevState {
  pending: Uint8Array[];
  source: LoopSource;
}

const libraryDriver: ChardevDriver = {
  type: 'detvm-library',
  write: () => 0, // replaced per instance (see libraryChardevCreate)
};

/**
 * Create a library chardev. `onOutput` receives each write as latin1 text (null: discard).
 * With `register`, it is listed by info chardev like any other chardev.
 */
export function libraryChardevCreate(m: LoopMachine, label: string, onOutput: ((text: string) => void) | null, register: boolean): Chardev {
  const driver: ChardevDriver = {
    ...libraryDriver,
    write: (_chr, buf) => {
      onOutput?.(Buffer.from(buf).toString('latin1'));
      return buf.length;
    },
  };
  const chr = chardevCreate(m, label, driver, 'detvm-library');
  const st: LibraryChardevState = { pending: [], source: null as unknown as LoopSource };
  const ready = (): boolean => st.pending.length > 0 && qemuChrBeCanWrite(chr) > 0;
  st.source = gSourceAttach(m.loop.sources, `library_chr_read ${label}`, G_PRIORITY_DEFAULT, {
    // Queued input is like bytes already in a socket buffer: the poll must not sleep past it.
    prepare: () => (ready() ? 0 : -1),
    check: ready,
    dispatch: () => {
      const can = qemuChrBeCanWrite(chr);
      const first = st.pending[0];
      if (!first || can <= 0) return;
      const n = Math.min(can, CHR_READ_BUF_LEN, first.length);
      if (n === first.length) st.pending.shift();
      else st.pending[0] = first.subarray(n);
      qemuChrBeWrite(chr, first.subarray(0, n));
      if (st.pending.length > 0) m.loop.inputLeftover = true;
    },
  });
  chr.state = st;
  chr.beOpen = true;
  if (register) {
    const err = chardevRegister(m, chr);
    if (err) throw new Error(err);
  }
  return chr;
}

/** Queue input for the frontend; it is delivered by the main loop as the frontend accepts it. */
export function libraryChardevSend(chr: Chardev, data: Uint8Array): void {
  const st = chr.state as LibraryChardevState;
  if (data.length > 0) st.pending.push(data.slice());
}

/** Bytes queued and not yet taken by the frontend. */
export function libraryChardevPending(chr: Chardev): number {
  const st = chr.state as LibraryChardevState;
  let n = 0;
  for (const p of st.pending) n += p.length;
  return n;
}
