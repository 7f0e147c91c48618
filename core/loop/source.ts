// GSource-like sources of the default main context (GLib gmain.c as QEMU uses it): prepare /
// check / dispatch, priorities, attach order. As in GLib, once a source is ready at priority P,
// sources with a numerically higher (lower) priority are neither polled nor dispatched in that
// iteration; ready sources dispatch in priority order, then attach order.
// Invariants: `seq` is unique per context, so the dispatch order is total.

import { assert } from '../util/index.ts';

export const G_PRIORITY_HIGH = -100;
export const G_PRIORITY_DEFAULT = 0;
export const G_PRIORITY_HIGH_IDLE = 100;
export const G_PRIORITY_DEFAULT_IDLE = 200;

/** A source of the main context. Callbacks are wiring, not state: rebuilt after a load. */
export interface LoopSource {
  name: string;
  priority: number;
  seq: number;
  /** Timeout contribution in ns (-1: none); 0 marks the source ready before the poll. */
  prepare: () => number;
  /** After the poll: whether the source is ready. */
  check: () => boolean;
  dispatch: () => void;
  attached: boolean;
  /** Set by the prepare phase of the current iteration. */
  readyAtPrepare: boolean;
}

export interface SourceSet {
  list: LoopSource[];
  nextSeq: number;
}

export function sourceSetCreate(): SourceSet {
  return { list: [], nextSeq: 0 };
}

export interface SourceFuncs {
  prepare?: () => number;
  check: () => boolean;
  dispatch: () => void;
}

/** Attach a source; it takes part from the next iteration on. @qemu g_source_attach */
export function gSourceAttach(set: SourceSet, name: string, priority: number, f: SourceFuncs): LoopSource {
  assert(Number.isInteger(priority), `source '${name}': priority ${priority} is not an integer`);
  const s: LoopSource = {
    name,
    priority,
    seq: set.nextSeq++,
    prepare: f.prepare ?? (() => -1),
    check: f.check,
    dispatch: f.dispatch,
    attached: true,
    readyAtPrepare: false,
  };
  // Keep the list sorted by (priority, seq) so iteration order is dispatch order.
  let i = set.list.length;
  while (i > 0 && set.list[i - 1]!.priority > priority) i--;
  set.list.splice(i, 0, s);
  return s;
}

/** Detach a source; a detached source is never dispatched again. @qemu g_source_destroy */
export function gSourceDestroy(set: SourceSet, s: LoopSource): void {
  if (!s.attached) return;
  s.attached = false;
  const i = set.list.indexOf(s);
  assert(i >= 0, `source '${s.name}' is attached but not in its context`);
  set.list.splice(i, 1);
}
