// Trace exporters: JSON lines (canonical), an indented call tree in the style of QEMU stack
// listings, and Chrome trace JSON for Perfetto (`traceEvents`, ph B/E/i, ts in microseconds of
// virtual time). All are pure functions of the records.

import { type TraceRecord, traceCanonicalLine } from './trace.ts';

/** One canonical JSON object per line, each ending in "\n". */
export function exportJsonLines(records: readonly TraceRecord[]): string {
  let out = '';
  for (const r of records) out += traceCanonicalLine(r) + '\n';
  return out;
}

function argsText(r: TraceRecord): string {
  if (!r.args) return '';
  const parts = Object.entries(r.args).map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/**
 * An indented call tree: each enter is a line "- name (args)" indented two spaces per depth,
 * events are "* name (args)"; exits are implied by the indentation. Records that close spans
 * opened before the first record (a window of a longer trace) are tolerated.
 */
export function exportCallTree(records: readonly TraceRecord[]): string {
  let depth = 0;
  let out = '';
  for (const r of records) {
    if (r.kind === 'exit') {
      depth = Math.max(0, depth - 1);
      continue;
    }
    out += '  '.repeat(depth) + (r.kind === 'enter' ? '- ' : '* ') + r.name + argsText(r) + '\n';
    if (r.kind === 'enter') depth++;
  }
  return out;
}

interface ChromeEvent {
  name: string;
  ph: 'B' | 'E' | 'i';
  ts: number;
  pid: number;
  tid: number;
  s?: 't';
  args?: Record<string, unknown>;
}

/** Chrome trace JSON (the object form with `traceEvents`), loadable by Perfetto. */
export function exportChromeTrace(records: readonly TraceRecord[]): string {
  const traceEvents: ChromeEvent[] = records.map((r) => {
    const ph = r.kind === 'enter' ? 'B' : r.kind === 'exit' ? 'E' : 'i';
    const ev: ChromeEvent = { name: r.name, ph, ts: r.ns / 1000, pid: 1, tid: 1 };
    if (ph === 'i') ev.s = 't';
    ev.args = { seq: r.seq, icount: r.icount, ...(r.args ?? {}) };
    return ev;
  });
  return JSON.stringify({ traceEvents, displayTimeUnit: 'ns', otherData: { producer: 'detvm' } });
}
