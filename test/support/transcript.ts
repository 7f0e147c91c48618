// Transcript replay against the conformance recordings of real QEMU 7.2.22 (shared/conformance):
// NAME.tx.bin is sent in the chunks of NAME.events.json (a note about a second or new connection
// reconnects), the loop runs until idle after each chunk, and everything received is compared
// with NAME.rx.bin after masking only the volatile parts the conformance README lists
// (timestamps, thread ids, register values, the package string) plus, where detvm deliberately
// lists fewer commands, the help lines of commands it does not implement.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FakePeer } from './monitor-chardev.ts';
import { fakePeerConnect, fakePeerDisconnect, fakePeerSend } from './monitor-chardev.ts';
import { type MonitorEnv, runUntilIdle } from './monitor-env.ts';

export const CONFORMANCE_DIR = fileURLToPath(new URL('../fixtures/qemu-7.2/conformance/', import.meta.url));

export interface TranscriptEvent {
  t: number;
  dir: '>>' | '<<' | '##';
  data: Uint8Array;
}

export interface Transcript {
  name: string;
  events: TranscriptEvent[];
  tx: Uint8Array;
  rx: Uint8Array;
}

/** Load NAME (or NAME.hmp) from the conformance directory. */
export function loadTranscript(name: string): Transcript {
  const read = (ext: string): Uint8Array => new Uint8Array(readFileSync(CONFORMANCE_DIR + name + ext));
  const json = JSON.parse(readFileSync(CONFORMANCE_DIR + name + '.events.json', 'utf8')) as {
    events: { t: number; dir: '>>' | '<<' | '##'; hex: string }[];
  };
  const events = json.events.map((e) => ({ t: e.t, dir: e.dir, data: new Uint8Array(Buffer.from(e.hex, 'hex')) }));
  return { name, events, tx: read('.tx.bin'), rx: read('.rx.bin') };
}

/** Masks for the volatile parts (README "Volatile parts to mask"). */
export interface MaskOptions {
  /** Hex words of register dumps (info registers). */
  registers?: boolean;
  /** Commands detvm implements: help listings keep only their lines. */
  helpFilter?: { main: string[]; info: string[] };
}

function latin1(a: Uint8Array): string {
  return Buffer.from(a).toString('latin1');
}

/** Apply the masks to a received byte stream (as a byte string). */
export function maskVolatile(text: string, opts: MaskOptions = {}): string {
  let s = text
    .replace(/"seconds": -?\d+, "microseconds": -?\d+/g, '"seconds": <S>, "microseconds": <US>')
    .replace(/"package": "(?:[^"\\]|\\.)*"/g, '"package": <PKG>')
    .replace(/thread_id=\d+/g, 'thread_id=<TID>');
  if (opts.registers) s = s.replace(/(?<= )[0-9a-f]{8}(?:[0-9a-f]{8})?(?=[ \r])/g, '<HEX>');
  if (opts.helpFilter) {
    const { main, info } = opts.helpFilter;
    s = s.split('\r\n').filter((line) => {
      const m = /^(info )?(\S+) .*-- /.exec(line);
      if (!m || line.includes('\x1b')) return true;
      return m[1] ? info.includes(m[2]!) : main.includes(m[2]!);
    }).join('\r\n');
  }
  return s;
}

/** What the replay produced, masked, next to the masked expectation. */
export interface ReplayResult {
  expected: string;
  actual: string;
  /** tx chunks concatenated equal NAME.tx.bin (a check of the harness itself). */
  txMatches: boolean;
}

/**
 * Replay `t` on `peer` (already attached to a monitor, not yet connected). Returns the masked
 * expected and actual streams; the caller asserts equality.
 */
export function replayTranscript(env: MonitorEnv, peer: FakePeer, t: Transcript, mask: MaskOptions = {}): ReplayResult {
  const sent: number[] = [];
  fakePeerConnect(peer);
  runUntilIdle(env);
  for (const e of t.events) {
    if (env.fm.m.loop.exitStatus !== null) break;
    if (e.dir === '>>') {
      sent.push(...e.data);
      fakePeerSend(peer, e.data);
      runUntilIdle(env);
    } else if (e.dir === '##' && /^(second|new) connection/.test(latin1(e.data))) {
      fakePeerDisconnect(peer);
      runUntilIdle(env);
      fakePeerConnect(peer);
      runUntilIdle(env);
    }
  }
  const actual = latin1(Uint8Array.from(peer.allOutput));
  return {
    expected: maskVolatile(latin1(t.rx), mask),
    actual: maskVolatile(actual, mask),
    txMatches: Buffer.compare(Buffer.from(sent), Buffer.from(t.tx)) === 0,
  };
}
